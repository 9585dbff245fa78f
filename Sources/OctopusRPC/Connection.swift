import NIOCore
import Logging
import Synchronization

/// Where an inbound call goes: a table of handlers, or a master that forwards to the branch offering the action.
protocol RPCRouter: AnyObject, Sendable {
    /// Decides, on the event loop and without waiting, what serves the call.
    func route(_ call: InboundCall) -> RPCRoute
    func notice(_ name: String, body: ByteBuffer, from connection: RPCConnection)
    func handshake(_ frame: Frame, from connection: RPCConnection)
}

struct InboundCall: Sendable {
    var connection: RPCConnection
    var action: String
    var target: String?
    var deadline: ContinuousClock.Instant?
}

/// What serves a call: a handler here, another connection (the master forwarding to a branch), or nothing.
enum RPCRoute: Sendable {
    /// A handler that answers without suspending: served in place, no task.
    case immediate(RPCHandlers.ImmediateRawHandler, RPCCallContext)
    case handler(RPCHandlers.RawHandler, RPCCallContext)
    case forward(RPCConnection, timeout: Duration)
    case refused(RPCError)

    /// Runs the call: the handler, or the forwarded call.
    nonisolated(nonsending) func run(_ action: String, body: consuming ByteBuffer) async throws -> ByteBuffer {
        switch self {
        case .immediate(let handler, let context):
            return try handler(body, context)
        case .handler(let handler, let context):
            return try await handler(body, context)
        case .forward(let connection, let timeout):
            return try await connection.callRaw(action: action, target: nil, body: body, timeout: timeout)
        case .refused(let error):
            throw error
        }
    }
}

/// Options shared by every endpoint.
public struct RPCOptions: Sendable {
    /// A call's deadline when the caller gives none.
    public var defaultTimeout: Duration = .seconds(5)
    /// After this much silence a connection sends a heartbeat; after three times it, the connection is dropped.
    /// nil turns heartbeats off.
    public var heartbeatInterval: Duration? = .seconds(10)
    /// The largest frame sent or accepted, header included; checked before anything is allocated.
    public var maxFrameSize: Int = Frame.defaultMaxFrameSize
    /// Master and branches: the shared secret; when set, a branch must prove it knows it (HMAC-SHA256 over a
    /// nonce from the master) to bind. The secret itself never travels.
    public var secret: [UInt8]?
    /// Master: a connection that has not bound within this time is dropped. Branch: how long to wait to be bound.
    public var handshakeTimeout: Duration = .seconds(5)
    /// Branch: reconnection backoff, doubled after each failed attempt up to the maximum, with ±20% jitter.
    public var reconnectMinimumDelay: Duration = .milliseconds(100)
    public var reconnectMaximumDelay: Duration = .seconds(5)

    /// Master: log (and tell the branch) when a branch offers an action another already serves. Off where many
    /// branches serve one name on purpose and every call names its branch.
    public var reportDuplicateActions = true

    /// Run handlers on the connection's event loop (default): a request is read and served on one thread with no
    /// hop, which halves round-trip latency (an immediate handler, see `RPCHandlers`, without even a task). A
    /// handler that blocks or computes for long then holds up that loop's other connections: turn this off to run
    /// handlers on the global concurrency pool instead.
    public var handlersOnEventLoop = true

    public init() {}

    public init(secret: String?) {
        self.secret = secret.map { Array($0.utf8) }
    }
}

/// One connection's request/response engine: ids, pending calls with deadlines, cancellation, heartbeats,
/// inbound calls run as tasks. Transport-agnostic: it sees encoded frames through a `FrameLink`.
public final class RPCConnection: Sendable, FrameReceiver {
    private struct Pending {
        var continuation: UnsafeContinuation<ByteBuffer, any Error>
        var deadline: NIODeadline
        var action: String
    }

    private struct State {
        var pending: [UInt64: Pending] = [:]
        var serving: [UInt64: Task<Void, Never>] = [:]
        /// Requests whose task is being created (see `serve`).
        var starting: Set<UInt64> = []
        var closedReason: RPCError?
        var sweepAt: NIODeadline?
        var heartbeat: RepeatedTask?
        var peerID: String?
        var bound = false
    }

    let link: any FrameLink
    let options: RPCOptions
    let logger: Logger
    /// Held strongly: an endpoint lives while a connection of its is open (it drops closed ones).
    private let router: any RPCRouter
    private let state = Mutex(State())
    private let nextID = Atomic<UInt64>(1)
    /// Set by every inbound frame, cleared by each heartbeat check: silence is counted in whole intervals, so the
    /// receive path pays no clock read.
    private let heardFrom = Atomic<Bool>(true)
    private let silentIntervals = Atomic<Int>(0)
    private let closedPromise: EventLoopPromise<RPCError>

    /// Where inbound calls run: the link's event loop (no thread hop between reading a request and running its
    /// handler), or the global concurrency pool when `options.handlersOnEventLoop` is off.
    private let handlerExecutor: EventLoopTaskExecutor?

    init(link: any FrameLink, options: RPCOptions, router: any RPCRouter, logger: Logger) {
        self.link = link
        self.handlerExecutor = options.handlersOnEventLoop ? EventLoopTaskExecutor(link.eventLoop) : nil
        self.options = options
        self.router = router
        self.logger = logger
        self.closedPromise = link.eventLoop.makePromise()
    }

    func start() {
        if let interval = options.heartbeatInterval {
            let amount = TimeAmount(interval)
            let task = link.eventLoop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { [weak self] _ in
                self?.checkHeartbeat(interval: amount)
            }
            state.withLock { $0.heartbeat = task }
        }
        link.start(self)
    }

    /// Who is at the other end: the bound branch or master id, else the transport's description.
    public var peer: String {
        state.withLock { $0.peerID } ?? link.peerDescription
    }

    var isBound: Bool { state.withLock { $0.bound } }

    func markBound(peerID: String) {
        state.withLock {
            $0.peerID = peerID
            $0.bound = true
        }
    }

    public var isClosed: Bool { state.withLock { $0.closedReason != nil } }

    /// Waits until the connection is closed and returns why.
    public func closed() async -> RPCError {
        (try? await closedPromise.futureResult.get()) ?? RPCError(.closed, "closed")
    }

    /// Runs `body` on the event loop once the connection is closed.
    func whenClosed(_ body: @escaping @Sendable (RPCError) -> Void) {
        closedPromise.futureResult.whenSuccess(body)
    }

    /// How many calls wait for an answer (for tests and status).
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    // MARK: Calls out

    /// Sends a request and waits for its answer. The body is the encoded input; the result the encoded output.
    nonisolated(nonsending) func callRaw(
        action: String, target: String?, body: consuming ByteBuffer, timeout: Duration?
    ) async throws -> ByteBuffer {
        let timeout = timeout ?? options.defaultTimeout
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let frame = try encodeRequest(id: id, action: action, target: target, body: body, timeout: timeout)
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                let (refused, armSweep) = state.withLock { state -> (RPCError?, Bool) in
                    if let reason = state.closedReason {
                        return (RPCError(reason.code, reason.message, action: action), false)
                    }
                    state.pending[id] = Pending(continuation: continuation, deadline: deadline, action: action)
                    if let at = state.sweepAt, at <= deadline { return (nil, false) }
                    state.sweepAt = deadline
                    return (nil, true)
                }
                if let refused {
                    continuation.resume(throwing: refused)
                    return
                }
                if armSweep { scheduleSweep(at: deadline) }
                link.send(frame)
                if Task.isCancelled { abandon(id, RPCError(.cancelled, "the calling task was cancelled", action: action)) }
            }
        } onCancel: {
            abandon(id, RPCError(.cancelled, "the calling task was cancelled", action: action))
        }
    }

    /// Sends a message that gets no answer.
    func sendOneWay(_ name: String, body: ByteBuffer) throws(RPCError) {
        let frame = try encode(kind: .oneWay, flags: [], id: 0, timeout: 0, head: name, body: body)
        link.send(frame)
    }

    func sendHandshake(_ body: ByteBuffer, error: Bool = false) {
        var frame = ByteBuffer()
        Frame(kind: .handshake, flags: error ? .error : [], id: 0, body: body).write(to: &frame)
        link.send(frame)
    }

    private func encodeRequest(
        id: UInt64, action: String, target: String?, body: consuming ByteBuffer, timeout: Duration
    ) throws -> ByteBuffer {
        let milliseconds = max(1, min(Int64(UInt32.max), timeout.milliseconds))
        if let target {
            return try encode(
                kind: .request, flags: .targeted, id: id, timeout: UInt32(milliseconds), head: target + "\0" + action,
                body: body, action: action)
        }
        return try encode(
            kind: .request, flags: [], id: id, timeout: UInt32(milliseconds), head: action, body: body, action: action)
    }

    /// One frame. When the body has room in front of it for the header and the head (see `RPCCodec.encodeBody`),
    /// they are written there and the body's buffer becomes the frame; otherwise the body is copied after them.
    private func encode(
        kind: FrameKind, flags: FrameFlags, id: UInt64, timeout: UInt32, head: String, body: consuming ByteBuffer,
        action: String? = nil
    ) throws(RPCError) -> ByteBuffer {
        let headLength = head.utf8.count
        let bodyLength = body.readableBytes
        let size = Frame.headerSize + headLength + bodyLength
        guard size <= options.maxFrameSize else {
            throw RPCError(
                .frameTooLarge, "a frame of \(size) bytes is over the limit of \(options.maxFrameSize)", action: action)
        }
        guard headLength <= Frame.maxHeadLength else {
            throw RPCError(.malformed, "the name is longer than \(Frame.maxHeadLength) bytes")
        }
        var frame: ByteBuffer
        let headroom = Frame.headerSize + headLength
        if body.readerIndex >= headroom {
            frame = body
            let start = frame.readerIndex - headroom
            frame.moveReaderIndex(to: start)
            Frame.setHeader(
                kind: kind, flags: flags, id: id, timeoutMilliseconds: timeout, headLength: headLength,
                bodyLength: bodyLength, at: start, in: &frame)
            frame.setString(head, at: start + Frame.headerSize)
            return frame
        }
        frame = ByteBuffer()
        frame.reserveCapacity(size)
        Frame.writeHeader(
            kind: kind, flags: flags, id: id, timeoutMilliseconds: timeout, headLength: headLength,
            bodyLength: bodyLength, to: &frame)
        frame.writeString(head)
        frame.writeImmutableBuffer(body)
        return frame
    }

    /// The caller gave up: fail the call here and tell the far side to stop working on it.
    private func abandon(_ id: UInt64, _ error: RPCError) {
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        pending.continuation.resume(throwing: error)
        var frame = ByteBuffer()
        Frame(kind: .cancel, id: id).write(to: &frame)
        link.send(frame)
    }

    private func scheduleSweep(at deadline: NIODeadline) {
        link.eventLoop.scheduleTask(deadline: deadline) { [weak self] in self?.sweep() }
    }

    /// Fails every call past its deadline and arms the next sweep at the earliest remaining deadline. Deadlines
    /// of later calls are later, so in steady traffic this runs about once per timeout, not once per call.
    private func sweep() {
        let now = NIODeadline.now()
        let (expired, next) = state.withLock { state -> ([(UInt64, Pending)], NIODeadline?) in
            var expired: [(UInt64, Pending)] = []
            var earliest: NIODeadline?
            for (id, pending) in state.pending {
                if pending.deadline <= now {
                    expired.append((id, pending))
                } else if earliest == nil || pending.deadline < earliest! {
                    earliest = pending.deadline
                }
            }
            for (id, _) in expired { state.pending[id] = nil }
            state.sweepAt = earliest
            return (expired, earliest)
        }
        if let next { scheduleSweep(at: next) }
        for (id, pending) in expired {
            pending.continuation.resume(
                throwing: RPCError(.timedOut, "no answer before the deadline", action: pending.action))
            var frame = ByteBuffer()
            Frame(kind: .cancel, id: id).write(to: &frame)
            link.send(frame)
        }
    }

    // MARK: Frames in

    func receive(_ frame: Frame) {
        if !heardFrom.load(ordering: .relaxed) { heardFrom.store(true, ordering: .relaxed) }
        switch frame.kind {
        case .response:
            guard let pending = state.withLock({ $0.pending.removeValue(forKey: frame.id) }) else {
                // An answer after the caller gave up (timeout or cancel): nobody waits for it.
                return
            }
            if frame.flags.contains(.error) {
                if let error = ControlJSON.decode(RPCError.self, from: frame.body) {
                    pending.continuation.resume(throwing: error)
                } else {
                    pending.continuation.resume(
                        throwing: RPCError(.malformed, "an error response that is not an RPC error", action: pending.action))
                }
            } else {
                pending.continuation.resume(returning: frame.body)
            }
        case .request:
            serve(frame)
        case .cancel:
            state.withLock { $0.serving.removeValue(forKey: frame.id) }?.cancel()
        case .oneWay:
            guard let name = frame.headString, !name.isEmpty else {
                return protocolViolation("a one-way message without a name")
            }
            guard isBoundOrPlain else { return protocolViolation("a message before the handshake") }
            router.notice(name, body: frame.body, from: self)
        case .heartbeat:
            if !frame.flags.contains(.pong) {
                var pong = ByteBuffer()
                Frame(kind: .heartbeat, flags: .pong, id: frame.id).write(to: &pong)
                link.send(pong)
            }
        case .handshake:
            router.handshake(frame, from: self)
        }
    }

    /// Plain connections (no master/branch) need no handshake; see `requireHandshake`.
    private let handshakeRequired = Atomic<Bool>(false)
    func requireHandshake() { handshakeRequired.store(true, ordering: .relaxed) }
    private var isBoundOrPlain: Bool { !handshakeRequired.load(ordering: .relaxed) || isBound }

    private func serve(_ frame: Frame) {
        guard let head = frame.headString, !head.isEmpty else {
            return protocolViolation("a request without an action name")
        }
        var action = head
        var target: String?
        if frame.flags.contains(.targeted) {
            guard let split = head.firstIndex(of: "\0") else {
                return protocolViolation("a targeted request without a target")
            }
            target = String(head[..<split])
            action = String(head[head.index(after: split)...])
        }
        guard isBoundOrPlain else {
            respond(frame.id, error: RPCError(.authenticationFailed, "call before the handshake", action: action))
            return protocolViolation("a request before the handshake")
        }
        let deadline = frame.timeoutMilliseconds == 0 ? nil : ContinuousClock.now + .milliseconds(frame.timeoutMilliseconds)
        let route = router.route(InboundCall(connection: self, action: action, target: target, deadline: deadline))
        let id = frame.id
        if case .refused(let error) = route {
            respond(id, error: RPCError.wrapping(error, action: action))
            return
        }
        if handlerExecutor != nil, case .immediate(let handler, let context) = route {
            // Answered before the next frame is read: no task, nothing that a cancel frame could still reach.
            do {
                respond(id, body: try handler(frame.body, context), action: action)
            } catch {
                respond(id, error: RPCError.wrapping(error, action: action))
                if let refusal = error as? RPCRefusal { refuse(refusal) }
            }
            return
        }
        let body = frame.body
        let work: @Sendable () async -> Void = { [self, action] in
            do {
                let output = try await route.run(action, body: body)
                if !Task.isCancelled { respond(id, body: output, action: action) }
            } catch {
                if !Task.isCancelled { respond(id, error: RPCError.wrapping(error, action: action)) }
                if let refusal = error as? RPCRefusal { refuse(refusal) }
            }
            state.withLock { state in
                state.serving[id] = nil
                state.starting.remove(id)
            }
        }
        // The id is reserved first: a task that starts immediately may finish before it could be recorded.
        let admitted = state.withLock { state -> Bool? in
            guard state.closedReason == nil else { return nil }
            guard state.serving[id] == nil, !state.starting.contains(id) else { return false }
            state.starting.insert(id)
            return true
        }
        guard let admitted else { return }
        guard admitted else { return protocolViolation("request id \(id) is already being served") }
        let task = if let executor = handlerExecutor { Self.startOnLoop(executor, work) } else { Task(operation: work) }
        let orphaned = state.withLock { state -> Bool in
            // Still starting: it runs on; recorded so that a cancel frame or the close can reach it.
            guard state.starting.remove(id) != nil else { return false }
            if state.closedReason != nil { return true }
            state.serving[id] = task
            return false
        }
        if orphaned { task.cancel() }  // the connection closed while it started
    }

    /// On the event loop the handler's task starts right here, on this thread, and runs until its first suspension
    /// (a handler that does not suspend answers before the next frame is read); on Swift runtimes without
    /// `Task.immediate` it is enqueued on the loop.
    private static func startOnLoop(_ executor: EventLoopTaskExecutor, _ work: @escaping @Sendable () async -> Void)
        -> Task<Void, Never>
    {
        if #available(macOS 26.0, *) {
            return Task.immediate(executorPreference: executor, operation: work)
        }
        return Task(executorPreference: executor, operation: work)
    }

    private func respond(_ id: UInt64, body: consuming ByteBuffer, action: String) {
        do {
            link.send(try encode(kind: .response, flags: [], id: id, timeout: 0, head: "", body: body, action: action))
        } catch {
            respond(id, error: RPCError(error.code, "the answer could not be sent: \(error.message)", action: action))
        }
    }

    private func respond(_ id: UInt64, error: RPCError) {
        var frame = ByteBuffer()
        Frame(kind: .response, flags: .error, id: id, body: ControlJSON.encode(error)).write(to: &frame)
        link.send(frame)
    }

    /// Runs every interval: after an interval without a frame, ping; after three, drop the connection.
    private func checkHeartbeat(interval: TimeAmount) {
        if heardFrom.exchange(false, ordering: .relaxed) {
            silentIntervals.store(0, ordering: .relaxed)
            return
        }
        let silent = silentIntervals.wrappingAdd(1, ordering: .relaxed).newValue
        let milliseconds = Int64(silent) * interval.nanoseconds / 1_000_000
        if silent >= 3 {
            logger.warning(
                "closing the connection: no frame for \(milliseconds) ms", metadata: ["rpc.peer": "\(peer)"])
            close(RPCError(.disconnected, "no frame from \(peer) for \(milliseconds) ms (heartbeat)"))
        } else {
            var ping = ByteBuffer()
            Frame(kind: .heartbeat, id: 0).write(to: &ping)
            link.send(ping)
        }
    }

    /// Closes the connection after the refusal's answer (the link sends what was queued before it closes).
    private func refuse(_ refusal: RPCRefusal) {
        logger.warning("closing the connection: \(refusal.error.message)", metadata: ["rpc.peer": "\(peer)"])
        close(refusal.error)
    }

    func protocolViolation(_ reason: String) {
        logger.warning("closing the connection: \(reason)", metadata: ["rpc.peer": "\(peer)"])
        close(RPCError(.malformed, reason))
    }

    func linkFailed(_ error: FrameError) {
        logger.warning("closing the connection: \(error)", metadata: ["rpc.peer": "\(peer)"])
        close(error.rpcError)
    }

    func linkClosed() {
        close(RPCError(.disconnected, "the connection to \(peer) closed"))
    }

    /// Closes the connection: pending calls fail at once (30014, or 30013 when closed by its owner), running
    /// handlers are cancelled.
    public func close() {
        close(RPCError(.closed, "the connection was closed"))
    }

    func close(_ reason: RPCError) {
        let taken = state.withLock { state -> ([Pending], [Task<Void, Never>], RepeatedTask?)? in
            guard state.closedReason == nil else { return nil }
            state.closedReason = reason
            let pending = Array(state.pending.values)
            let serving = Array(state.serving.values)
            state.pending.removeAll()
            state.serving.removeAll()
            defer { state.heartbeat = nil }
            return (pending, serving, state.heartbeat)
        }
        guard let (pending, serving, heartbeat) = taken else { return }
        heartbeat?.cancel()
        let code: RPCError.Code = reason.code == .closed ? .closed : .disconnected
        for call in pending {
            call.continuation.resume(throwing: RPCError(code, reason.message, action: call.action))
        }
        for task in serving { task.cancel() }
        link.close()
        closedPromise.succeed(reason)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Runs Swift tasks on a NIO event loop (tasks created with this preference, and what they await that is not
/// isolated elsewhere, run there).
///
/// Jobs wait in a queue of their own and one event-loop task, made once, runs them (a closure per job would be an
/// allocation per resumed call).
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop
    private let queue = Mutex<[UnownedJob]>([])
    private var runTask: (@Sendable () -> Void)!
    /// Event-loop state: the batch being run, kept to reuse its storage.
    private var running: [UnownedJob] = []

    init(_ loop: any EventLoop) {
        self.loop = loop
        runTask = { [weak self] in self?.runQueued() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let first = queue.withLock { queue in
            queue.append(job)
            return queue.count == 1
        }
        if first { loop.execute(runTask) }
    }

    private func runQueued() {
        queue.withLock { swap(&$0, &running) }
        let executor = asUnownedTaskExecutor()
        for job in running { job.runSynchronously(on: executor) }
        running.removeAll(keepingCapacity: true)
    }
}
