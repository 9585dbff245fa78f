public import NIOCore
public import Logging
import Foundation
import Synchronization

/// A process that joins a master (node-octopus's Branch): it binds with a handshake, offers its actions, calls any
/// action (its own first, then through the master), and reconnects with backoff when the connection drops,
/// binding again with the same id and actions.
public final class RPCBranch: RPCCaller, RPCRouter {
    public let id: String
    public let handlers: RPCHandlers
    public let options: RPCOptions
    let logger: Logger

    private struct State {
        var connection: RPCConnection?
        var binding: EventLoopPromise<HandshakeMessage>?
        var directory: [String: [String]] = [:]
        var masterID: String?
        var address: RPCAddress?
        var supervisor: Task<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())
    /// Every connection of this branch (first and after reconnection) runs on this event loop.
    public let eventLoop: any EventLoop
    private let loopExecutor: EventLoopTaskExecutor

    /// An executor on the branch's event loop. Calls made from a task that prefers it
    /// (`withTaskExecutorPreference(branch.executor) { … }`) are sent and answered on one thread with no
    /// hand-off, which is the lowest latency for a caller that makes calls one after another. Do not block in such
    /// a task: it shares the thread with the connection's I/O.
    public var executor: any TaskExecutor { loopExecutor }
    public let events: AsyncStream<RPCEvent>
    private let eventSink: AsyncStream<RPCEvent>.Continuation

    public init(
        id: String, handlers: RPCHandlers = RPCHandlers(), options: RPCOptions = RPCOptions(),
        logger: Logger = Logger(label: "octopus.rpc")
    ) {
        self.id = id
        self.handlers = handlers
        self.options = options
        self.logger = logger
        self.eventLoop = Transport.group.next()
        self.loopExecutor = EventLoopTaskExecutor(eventLoop)
        (events, eventSink) = AsyncStream.makeStream(of: RPCEvent.self, bufferingPolicy: .bufferingNewest(1024))
    }

    /// Connects and binds. Throws when the first bind fails (30002 cannot connect, 30009 refused, 30016 timed
    /// out, ...); once bound, the branch keeps itself connected until `close()`.
    public func connect(to address: RPCAddress) async throws {
        let connection = try await bind(address)
        state.withLock { $0.address = address }
        startSupervising(connection)
    }

    private func startSupervising(_ connection: RPCConnection) {
        let supervisor = Task { await self.supervise(connection) }
        let stale = state.withLock { state -> Bool in
            if state.closed { return true }
            state.supervisor = supervisor
            return false
        }
        if stale {
            supervisor.cancel()
            connection.close()
        }
    }

    /// Binds over a connected stream socket this process holds (typically inherited from the process that started
    /// it, which holds the other end). There is nothing to reconnect to: when the connection ends, `events` says so
    /// and the branch stays unbound. The branch owns the descriptor from then on.
    public func connect(descriptor: Int32) async throws {
        let connection = try await bind { [eventLoop, options] in
            try await Transport.adopt(descriptor, maxFrameSize: options.maxFrameSize, on: eventLoop)
        }
        startSupervising(connection)
    }

    /// Sends a one-way message to the master (its `onMessage` handler of `name` gets it). Messages and calls arrive
    /// in the order they were sent. Throws 30002 when the branch is not bound.
    public func send(_ name: String, body: ByteBuffer) throws(RPCError) {
        guard let connection = state.withLock({ $0.connection }), !connection.isClosed else {
            throw RPCError(.notConnected, "branch \"\(id)\" is not bound to a master", action: name)
        }
        try connection.sendOneWay(name, body: body)
    }

    /// Whether the branch is bound to the master now.
    public var isConnected: Bool {
        state.withLock { $0.connection.map { !$0.isClosed } ?? false }
    }

    /// The directory as last told by the master (branch id → actions, the master under its id).
    public var directory: [String: [String]] { state.withLock { $0.directory } }

    private func bind(_ address: RPCAddress) async throws -> RPCConnection {
        try await bind { [eventLoop, options] in
            do {
                return try await Transport.connect(address, maxFrameSize: options.maxFrameSize, on: eventLoop)
            } catch let error as RPCError {
                throw error
            } catch {
                throw RPCError(.notConnected, "cannot connect to \(address): \(error)")
            }
        }
    }

    private func bind(_ makeLink: () async throws -> any FrameLink) async throws -> RPCConnection {
        let link: any FrameLink
        do {
            link = try await makeLink()
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(.notConnected, "cannot take over the connection: \(error)")
        }
        let connection = RPCConnection(link: link, options: options, router: self, logger: logger)
        connection.requireHandshake()
        let promise = link.eventLoop.makePromise(of: HandshakeMessage.self)
        let alreadyClosed = state.withLock { state -> Bool in
            if state.closed { return true }
            state.binding?.fail(RPCError(.closed, "superseded"))
            state.binding = promise
            return false
        }
        if alreadyClosed {
            let error = RPCError(.closed, "the branch is closed")
            promise.fail(error)
            connection.close(error)  // fulfils its promises too
            throw error
        }
        connection.start()
        let timeout = link.eventLoop.scheduleTask(in: TimeAmount(options.handshakeTimeout)) {
            promise.fail(RPCError(.bindTimedOut, "the master did not bind this branch within \(self.options.handshakeTimeout)"))
        }
        connection.whenClosed { reason in
            // A connection that ends before the welcome fails the bind with its reason (no-op after it).
            promise.fail(RPCError(reason.code == .closed ? .closed : .disconnected, reason.message))
        }
        let welcome: HandshakeMessage
        do {
            welcome = try await promise.futureResult.get()
            timeout.cancel()
        } catch {
            timeout.cancel()
            connection.close(error as? RPCError ?? RPCError(.authenticationFailed, "\(error)"))
            throw error
        }
        // Under the lock `close()` takes: either it sees this connection and closes it, or this sees it closed.
        let closedMeanwhile = state.withLock { state -> Bool in
            if state.binding == promise { state.binding = nil }
            if state.closed { return true }
            state.connection = connection
            state.masterID = welcome.id
            state.directory = welcome.directory ?? [:]
            return false
        }
        if closedMeanwhile {
            let error = RPCError(.closed, "the branch is closed")
            connection.close(error)
            throw error
        }
        for line in welcome.duplicates ?? [] { logger.warning("action offered twice: \(line)") }
        logger.info("bound", metadata: ["rpc.master": "\(welcome.id)", "rpc.branch": "\(id)"])
        eventSink.yield(.connected(master: welcome.id))
        return connection
    }

    /// Waits for the connection to end, then reconnects with backoff until bound again or closed.
    private func supervise(_ first: RPCConnection) async {
        var connection = first
        while true {
            let reason = await connection.closed()
            let (closed, address) = state.withLock { state -> (Bool, RPCAddress?) in
                if state.connection === connection { state.connection = nil }
                return (state.closed, state.address)
            }
            if closed { return }
            logger.warning("disconnected from the master: \(reason.message)", metadata: ["rpc.branch": "\(id)"])
            eventSink.yield(.disconnected(reason: reason.message))
            guard let address else { return }
            var delay = options.reconnectMinimumDelay
            while true {
                let jittered = delay * Double.random(in: 0.8...1.2)
                do { try await Task.sleep(for: jittered) } catch { return }
                if state.withLock({ $0.closed }) { return }
                do {
                    connection = try await bind(address)
                    break
                } catch {
                    logger.info("reconnect failed: \(error)", metadata: ["rpc.branch": "\(id)"])
                    delay = min(delay * 2, options.reconnectMaximumDelay)
                }
            }
        }
    }

    // MARK: Calls

    /// This branch's own handler first, else through the master (its handler, or the branch that offers the
    /// action); `on` names the branch (or the master's id) that must run it.
    nonisolated(nonsending) public func callRaw(
        _ action: String, body: consuming ByteBuffer, on target: String?, timeout: Duration?
    ) async throws -> ByteBuffer {
        if target == nil || target == id, let handler = handlers.handler(for: action) {
            let deadline = ContinuousClock.now + (timeout ?? options.defaultTimeout)
            return try await handler(body, RPCCallContext(action: action, caller: id, deadline: deadline))
        }
        if target == id { throw RPCError(.noSuchAction, "this branch has no handler for it", action: action) }
        let (connection, master) = state.withLock { ($0.connection, $0.masterID) }
        guard let connection else {
            throw RPCError(.notConnected, "branch \"\(id)\" is not bound to a master", action: action)
        }
        return try await connection.callRaw(
            action: action, target: target == master ? nil : target, body: body, timeout: timeout)
    }

    // MARK: Router

    func route(_ call: InboundCall) -> RPCRoute {
        guard let entry = handlers.entry(for: call.action) else {
            return .refused(RPCError(.noSuchAction, "branch \"\(id)\" has no handler for it", action: call.action))
        }
        return entry.route(RPCCallContext(action: call.action, caller: call.connection.peer, deadline: call.deadline))
    }

    func notice(_ name: String, body: ByteBuffer, from connection: RPCConnection) {
        switch name {
        case PresenceNotice.online, PresenceNotice.offline:
            guard let notice = ControlJSON.decode(PresenceNotice.self, from: body) else {
                return connection.protocolViolation("a presence notice that does not decode")
            }
            if name == PresenceNotice.online {
                state.withLock { $0.directory[notice.branch] = notice.actions }
                eventSink.yield(.online(branch: notice.branch, actions: notice.actions))
            } else {
                state.withLock { _ = $0.directory.removeValue(forKey: notice.branch) }
                eventSink.yield(.offline(branch: notice.branch))
            }
        default:
            guard let handler = handlers.messageHandler(for: name) else {
                logger.debug("a message nobody handles", metadata: ["rpc.message": "\(name)"])
                return
            }
            handler(body, RPCMessageContext(name: name, sender: connection.peer))
        }
    }

    func handshake(_ frame: Frame, from connection: RPCConnection) {
        guard let promise = state.withLock({ $0.binding }) else {
            return connection.protocolViolation("a handshake frame after binding")
        }
        if frame.flags.contains(.error) {
            let error = ControlJSON.decode(RPCError.self, from: frame.body)
                ?? RPCError(.malformed, "a handshake error that does not decode")
            promise.fail(error)
            return
        }
        guard let message = ControlJSON.decode(HandshakeMessage.self, from: frame.body) else {
            promise.fail(RPCError(.malformed, "a handshake message that does not decode"))
            return
        }
        switch message.stage {
        case "challenge":
            guard message.version == HandshakeMessage.protocolVersion else {
                promise.fail(
                    RPCError(.versionMismatch, "master speaks version \(message.version), branch \(HandshakeMessage.protocolVersion)"))
                return
            }
            let proof = options.secret.map { HandshakeMessage.proof(secret: $0, nonce: message.nonce ?? "", branch: id) }
            connection.sendHandshake(
                ControlJSON.encode(
                    HandshakeMessage(
                        stage: "bind", version: HandshakeMessage.protocolVersion, id: id, proof: proof,
                        actions: handlers.actions)))
        case "welcome":
            // Bound here, on the event loop, so that a call the master sends right after the welcome is served.
            connection.markBound(peerID: message.id)
            promise.succeed(message)
        default:
            promise.fail(RPCError(.malformed, "unexpected handshake stage \"\(message.stage)\""))
        }
    }

    /// Closes the connection (pending calls fail with 30013) and stops reconnecting; ends `events`.
    public func close() async {
        let (connection, supervisor, binding) = state.withLock { state in
            state.closed = true
            return (state.connection, state.supervisor, state.binding)
        }
        binding?.fail(RPCError(.closed, "the branch is closed"))
        supervisor?.cancel()
        if let connection {
            connection.close()
            _ = await connection.closed()
        }
        await supervisor?.value
        eventSink.finish()
    }
}
