import NIOCore
import NIOPosix
import Synchronization

/// Where a connection's frames come from: told of each decoded frame, of a stream that is not frames, and of the end.
protocol FrameReceiver: AnyObject, Sendable {
    func receive(_ frame: Frame)
    func linkFailed(_ error: FrameError)
    func linkClosed()
}

/// What carries encoded frames between two connections: a socket (NIO) or memory (in-process).
protocol FrameLink: AnyObject, Sendable {
    /// Timers of the connection run here.
    var eventLoop: any EventLoop { get }
    /// Who is at the other end, for log lines.
    var peerDescription: String { get }
    /// Begins delivery; frames that arrived earlier are delivered first. Called once.
    func start(_ receiver: any FrameReceiver)
    /// Queues one encoded frame; frames sent from any thread go out in order, coalesced into few writes.
    func send(_ frame: ByteBuffer)
    func close()
}

// MARK: - Sockets

/// The NIO side of a link: frames are cut by `FrameByteDecoder` and handed to the receiver on the event loop.
/// Frames sent on the event loop are batched at once and flushed together: at the end of the read that produced
/// them (a handler answering in place), else by one flush task per event-loop turn. Frames sent from other threads
/// are queued and join the batch once per event-loop turn. Small frames of a batch are copied into one buffer, so
/// that the channel's pipeline sees one write per flush rather than one per frame.
final class NIOFrameLink: FrameLink, @unchecked Sendable {
    let channel: any Channel
    let peerDescription: String
    let eventLoop: any EventLoop

    private struct Outbox {
        var frames: [ByteBuffer] = []
        var drainScheduled = false
    }
    private let outbox = Mutex(Outbox())
    /// Mirrors `Outbox.drainScheduled` for the event loop's fast path: frames from other threads wait.
    private let outboxWaiting = Atomic<Bool>(false)
    // Event-loop state.
    private var receiver: (any FrameReceiver)?
    private var early: [Frame] = []
    private var earlyEnd: FrameError?? = nil
    /// Inside a read: frames written now are flushed when the read completes.
    private var reading = false
    /// Small frames waiting for the flush, back to back in one buffer (or the first one as it came).
    private var batch: ByteBuffer?
    /// Frames were written and wait for a flush (at the end of the read, or by the flush task).
    private var unflushed = false
    private var flushScheduled = false
    /// The event-loop tasks, made once (a closure per send would be an allocation per frame).
    private var drainTask: (@Sendable () -> Void)!
    private var flushTask: (@Sendable () -> Void)!
    /// Server side: told once the accepted channel is active (before that, writes would go nowhere).
    var onActive: (@Sendable (NIOFrameLink) -> Void)?

    func activated() {
        guard let onActive else { return }
        self.onActive = nil
        onActive(self)
    }

    init(channel: any Channel, peerDescription: String) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.peerDescription = peerDescription
        drainTask = { [weak self] in self?.drain() }
        flushTask = { [weak self] in
            guard let self else { return }
            flushScheduled = false
            flushIfNeeded()
        }
    }

    func start(_ receiver: any FrameReceiver) {
        eventLoop.execute {
            self.receiver = receiver
            let frames = self.early
            self.early = []
            for frame in frames { receiver.receive(frame) }
            if let end = self.earlyEnd {
                self.receiver = nil
                if let failure = end { receiver.linkFailed(failure) }
                receiver.linkClosed()
            }
        }
    }

    func send(_ frame: ByteBuffer) {
        if eventLoop.inEventLoop {
            // Frames queued earlier from other threads go first.
            if outboxWaiting.load(ordering: .acquiring) { drain() }
            guard channel.isActive else { return }
            write(frame)
            if !reading, !flushScheduled {
                // The first frame of a turn goes out at once (a lone call waits for nothing); frames that follow it
                // in this turn are flushed together by the flush task.
                flushIfNeeded()
                flushScheduled = true
                eventLoop.execute(flushTask)
            }
            return
        }
        let schedule = outbox.withLock { box in
            box.frames.append(frame)
            if box.drainScheduled { return false }
            box.drainScheduled = true
            outboxWaiting.store(true, ordering: .releasing)
            return true
        }
        if schedule { eventLoop.execute(drainTask) }
    }

    private func drain() {
        let frames = outbox.withLock { box in
            box.drainScheduled = false
            outboxWaiting.store(false, ordering: .relaxed)
            let frames = box.frames
            box.frames.removeAll(keepingCapacity: true)
            return frames
        }
        guard channel.isActive, !frames.isEmpty else { return }
        for frame in frames { write(frame) }
        if !reading { flushIfNeeded() }
    }

    /// Frames up to this size are copied into the batch; bigger ones go to the channel as they are.
    private static let batchedFrameSize = 4096

    private func write(_ frame: ByteBuffer) {
        unflushed = true
        guard frame.readableBytes <= Self.batchedFrameSize else {
            writeBatch()
            channel.write(frame, promise: nil)
            return
        }
        if batch == nil {
            batch = frame
        } else {
            batch!.writeImmutableBuffer(frame)
        }
    }

    private func writeBatch() {
        guard let batch else { return }
        self.batch = nil
        channel.write(batch, promise: nil)
    }

    private func flushIfNeeded() {
        guard unflushed else { return }
        unflushed = false
        writeBatch()
        channel.flush()
    }

    /// The channel's read is over: what its frames' handlers wrote goes out in one flush.
    func readComplete() {
        reading = false
        flushIfNeeded()
    }

    func close() {
        // After whatever was sent before (an error frame before a refusal, say).
        eventLoop.execute {
            self.drain()
            self.flushIfNeeded()
            self.channel.close(promise: nil)
        }
    }

    // Called by the pipeline's handler on the event loop.
    func delivered(_ frame: Frame) {
        reading = true
        if let receiver { receiver.receive(frame) } else { early.append(frame) }
    }

    func failed(_ error: FrameError) {
        if let receiver { receiver.linkFailed(error) } else { earlyEnd = .some(error) }
        channel.close(promise: nil)
    }

    func ended() {
        if let receiver {
            self.receiver = nil  // the receiver holds this link: break the cycle
            receiver.linkClosed()
        } else if earlyEnd == nil {
            earlyEnd = .some(nil)
        }
        // Frames still queued have nowhere to go.
        outbox.withLock { $0.frames.removeAll() }
        batch = nil
    }
}

/// Cuts the byte stream into frames (see `FrameDecoder`) and hands each to the link directly: a frame is not boxed
/// into the pipeline's `NIOAny` (it is too large to fit inline: one allocation per frame saved).
struct FrameByteDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    let decoder: FrameDecoder
    let link: NIOFrameLink

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try decoder.next(from: &buffer) else { return .needMoreData }
        link.delivered(frame)
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // Whatever is left at the end is a truncated frame: reported, so that the reason is logged.
        if buffer.readableBytes > 0 {
            let count = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: count)
            throw FrameError(reason: .truncated(count))
        }
        return .needMoreData
    }
}

/// The last handler: the channel's activation, errors and end go to the link.
final class FrameLinkHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Never
    let link: NIOFrameLink

    init(link: NIOFrameLink) { self.link = link }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { link.activated() }
    }

    func channelActive(context: ChannelHandlerContext) {
        link.activated()
        context.fireChannelActive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let frameError = error as? FrameError {
            link.failed(frameError)
        } else {
            // I/O errors (reset by peer and the like) end the connection; channelInactive reports it.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link.readComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        link.ended()
        context.fireChannelInactive()
    }
}

extension NIOFrameLink {
    /// Adds the frame handlers to a fresh channel and returns its link. Runs on the channel's event loop.
    static func install(
        on channel: any Channel, maxFrameSize: Int, onActive: (@Sendable (NIOFrameLink) -> Void)? = nil
    ) throws -> NIOFrameLink {
        let peer = channel.remoteAddress.map { "\($0)" } ?? "unix peer"
        let link = NIOFrameLink(channel: channel, peerDescription: peer)
        link.onActive = onActive
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(
            ByteToMessageHandler(FrameByteDecoder(decoder: FrameDecoder(maxFrameSize: maxFrameSize), link: link)))
        try sync.addHandler(FrameLinkHandler(link: link))
        return link
    }
}

// MARK: - In process

/// Two connections in one process joined through memory: frames are still encoded and decoded (the same code
/// path as sockets), and delivered on an event loop in order.
final class InProcessLink: FrameLink, @unchecked Sendable {
    let eventLoop: any EventLoop
    let peerDescription: String
    private let decoder: FrameDecoder
    // Event-loop state.
    private weak var peer: InProcessLink?
    private var receiver: (any FrameReceiver)?
    private var inbox = ByteBuffer()
    private var early: [ByteBuffer] = []
    private var isClosed = false

    private init(eventLoop: any EventLoop, name: String, maxFrameSize: Int) {
        self.eventLoop = eventLoop
        self.peerDescription = name
        self.decoder = FrameDecoder(maxFrameSize: maxFrameSize)
    }

    /// A joined pair; both ends share one event loop, so each side's frames arrive in the order they were sent.
    static func pair(name: String, maxFrameSize: Int, on loop: any EventLoop) -> (InProcessLink, InProcessLink) {
        let a = InProcessLink(eventLoop: loop, name: "in-process \(name) (server side)", maxFrameSize: maxFrameSize)
        let b = InProcessLink(eventLoop: loop, name: "in-process \(name) (client side)", maxFrameSize: maxFrameSize)
        a.peer = b
        b.peer = a
        return (a, b)
    }

    func start(_ receiver: any FrameReceiver) {
        eventLoop.execute {
            self.receiver = receiver
            let bytes = self.early
            self.early = []
            for chunk in bytes { self.accept(chunk) }
            if self.isClosed {
                self.receiver = nil
                receiver.linkClosed()
            }
        }
    }

    func send(_ frame: ByteBuffer) {
        eventLoop.execute {
            guard !self.isClosed, let peer = self.peer else { return }
            peer.accept(frame)
        }
    }

    /// Raw bytes into this end, as a socket would deliver them (tests use it to send garbage).
    func injectBytes(_ bytes: ByteBuffer) {
        eventLoop.execute { self.accept(bytes) }
    }

    private func accept(_ bytes: ByteBuffer) {
        guard !isClosed else { return }
        guard let receiver else {
            early.append(bytes)
            return
        }
        var chunk = bytes
        inbox.writeBuffer(&chunk)
        do {
            while let frame = try decoder.next(from: &inbox) {
                receiver.receive(frame)
                if isClosed { return }
            }
            inbox.discardReadBytes()
        } catch {
            receiver.linkFailed(error)
            close()
        }
    }

    func close() {
        eventLoop.execute {
            self.end()
            self.peer?.end()
        }
    }

    private func end() {
        guard !isClosed else { return }
        isClosed = true
        let receiver = self.receiver
        self.receiver = nil  // the receiver holds this link: break the cycle
        receiver?.linkClosed()
    }
}
