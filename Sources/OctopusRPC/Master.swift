public import NIOCore
public import Logging
import Foundation
import Synchronization

/// The center of a master/branch group (node-octopus's Master): it listens, binds branches after a handshake,
/// keeps the directory of who offers which action, serves its own actions and forwards calls between branches.
///
/// Routing of a call that reaches the master: a call aimed at a branch goes there (30007 when it is not bound);
/// otherwise the master's own handler runs if it has one; otherwise the call goes to the branch that offers the
/// action; otherwise 30001. When several branches offer one name, the one that bound first serves and the
/// others stand by in bind order, taking over when it goes offline; the master's own handler shadows them all.
/// Every such overlap is logged at bind and returned in the welcome.
public final class RPCMaster: RPCCaller, RPCRouter {
    public let id: String
    public let handlers: RPCHandlers
    public let options: RPCOptions
    let logger: Logger
    /// Every connection of this master (accepted or adopted) runs on this event loop, so that a call forwarded from
    /// one branch to another is written on the thread that read it, with no hand-off to another thread.
    let eventLoop: any EventLoop

    private struct Branch {
        var connection: RPCConnection
        var actions: [String]
        var sequence: Int
    }

    private struct State {
        var branches: [String: Branch] = [:]
        var connections: [ObjectIdentifier: RPCConnection] = [:]
        var nonces: [ObjectIdentifier: String] = [:]
        /// Adopted connections that only one branch id may bind on.
        var reserved: [ObjectIdentifier: String] = [:]
        var listeners: [Listener] = []
        var nextSequence = 0
        var closed = false
    }

    private let state = Mutex(State())
    public let events: AsyncStream<RPCEvent>
    private let eventSink: AsyncStream<RPCEvent>.Continuation

    public init(
        id: String = "master", handlers: RPCHandlers = RPCHandlers(), options: RPCOptions = RPCOptions(),
        logger: Logger = Logger(label: "octopus.rpc")
    ) {
        self.id = id
        self.handlers = handlers
        self.options = options
        self.logger = logger
        self.eventLoop = Transport.group.next()
        (events, eventSink) = AsyncStream.makeStream(of: RPCEvent.self, bufferingPolicy: .bufferingNewest(1024))
    }

    /// Starts listening; returns the bound address (the actual port for `tcp` port 0). May be called for
    /// several addresses.
    @discardableResult
    public func listen(_ address: RPCAddress) async throws -> RPCAddress {
        let listener = try await Transport.listen(address, maxFrameSize: options.maxFrameSize, on: eventLoop) {
            [self] link in
            accept(link)
        }
        let refused = state.withLock { state -> Bool in
            if state.closed { return true }
            state.listeners.append(listener)
            return false
        }
        if refused {
            await listener.close()
            throw RPCError(.closed, "the master is closed")
        }
        logger.debug("listening", metadata: ["rpc.address": "\(listener.address)"])
        return listener.address
    }

    /// Serves a connected stream socket this process holds (an end of a socketpair whose other end a child process
    /// inherited) as if it had been accepted: the peer binds through the same handshake, secret included. With
    /// `branch`, only a bind with that id is accepted on it (30009 otherwise). The master owns the descriptor from
    /// then on, also when this throws (the descriptor is then closed).
    public func adopt(descriptor: Int32, branch: String? = nil) async throws {
        let link = try await Transport.adopt(descriptor, maxFrameSize: options.maxFrameSize, on: eventLoop)
        accept(link, reservedFor: branch)
    }

    /// The bound branches and what each offers; the master's own actions are under its id.
    public var directory: [String: [String]] {
        let branches = state.withLock { $0.branches.mapValues(\.actions) }
        return branches.merging([id: handlers.actions]) { branch, _ in branch }
    }

    // MARK: Calls

    /// The master's own handler, else the branch that offers the action; `on` names a branch.
    nonisolated(nonsending) public func callRaw(
        _ action: String, body: consuming ByteBuffer, on target: String?, timeout: Duration?
    ) async throws -> ByteBuffer {
        let deadline = ContinuousClock.now + (timeout ?? options.defaultTimeout)
        return try await route(action: action, target: target, caller: id, deadline: deadline).run(action, body: body)
    }

    /// What serves a call that reaches the master (see the type's documentation for the rule).
    private func route(action: String, target: String?, caller: String, deadline: ContinuousClock.Instant) -> RPCRoute {
        if let target, target != id {
            guard let branch = state.withLock({ $0.branches[target] }) else {
                return .refused(RPCError(.targetOffline, "branch \"\(target)\" is not bound", action: action))
            }
            return forward(action, to: branch.connection, deadline: deadline)
        }
        if let entry = handlers.entry(for: action) {
            return entry.route(RPCCallContext(action: action, caller: caller, deadline: deadline))
        }
        if target != nil {
            return .refused(RPCError(.noSuchAction, "the master has no handler for it", action: action))
        }
        guard let provider = provider(of: action) else {
            return .refused(RPCError(.noSuchAction, "neither the master nor any bound branch offers it", action: action))
        }
        return forward(action, to: provider, deadline: deadline)
    }

    private func forward(_ action: String, to connection: RPCConnection, deadline: ContinuousClock.Instant) -> RPCRoute {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else {
            return .refused(RPCError(.timedOut, "no time left to forward the call", action: action))
        }
        return .forward(connection, timeout: remaining)
    }

    /// The branch that serves `action`: the earliest bound of those offering it.
    private func provider(of action: String) -> RPCConnection? {
        state.withLock { state in
            state.branches.values.filter { $0.actions.contains(action) }.min { $0.sequence < $1.sequence }?.connection
        }
    }

    // MARK: Connections

    private func accept(_ link: any FrameLink, reservedFor branch: String? = nil) {
        let connection = RPCConnection(link: link, options: options, router: self, logger: logger)
        connection.requireHandshake()
        var bytes = [UInt8](repeating: 0, count: 32)
        var random = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = random.next() }
        let nonce = bytes.hex
        let key = ObjectIdentifier(connection)
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.connections[key] = connection
            state.nonces[key] = nonce
            state.reserved[key] = branch
            return true
        }
        connection.start()
        guard accepted else {
            connection.close()
            return
        }
        connection.sendHandshake(
            ControlJSON.encode(HandshakeMessage(stage: "challenge", version: HandshakeMessage.protocolVersion, id: id, nonce: nonce)))
        link.eventLoop.scheduleTask(in: TimeAmount(options.handshakeTimeout)) { [weak connection, options, logger] in
            guard let connection, !connection.isBound, !connection.isClosed else { return }
            logger.warning(
                "dropping a connection that did not bind within \(options.handshakeTimeout)",
                metadata: ["rpc.peer": "\(connection.peer)"])
            let error = RPCError(.bindTimedOut, "no bind within \(options.handshakeTimeout)")
            connection.sendHandshake(ControlJSON.encode(error), error: true)
            connection.close(error)
        }
        connection.whenClosed { [self] _ in ended(connection) }
    }

    private func ended(_ connection: RPCConnection) {
        let key = ObjectIdentifier(connection)
        let (gone, others) = state.withLock { state -> (String?, [RPCConnection]) in
            state.connections[key] = nil
            state.nonces[key] = nil
            state.reserved[key] = nil
            guard let (branchID, _) = state.branches.first(where: { $0.value.connection === connection }) else {
                return (nil, [])
            }
            state.branches[branchID] = nil
            return (branchID, state.branches.values.map(\.connection))
        }
        guard let gone else { return }
        logger.info("branch offline", metadata: ["rpc.branch": "\(gone)"])
        let body = ControlJSON.encode(PresenceNotice(branch: gone, actions: []))
        for other in others { try? other.sendOneWay(PresenceNotice.offline, body: body) }
        eventSink.yield(.offline(branch: gone))
    }

    func handshake(_ frame: Frame, from connection: RPCConnection) {
        let key = ObjectIdentifier(connection)
        func refuse(_ error: RPCError) {
            logger.warning("refusing a branch: \(error.message)", metadata: ["rpc.peer": "\(connection.peer)"])
            connection.sendHandshake(ControlJSON.encode(error), error: true)
            connection.close(error)
        }
        guard !connection.isBound else { return refuse(RPCError(.malformed, "a second bind on one connection")) }
        guard let message = ControlJSON.decode(HandshakeMessage.self, from: frame.body), message.stage == "bind" else {
            return refuse(RPCError(.malformed, "the handshake is not a bind message"))
        }
        guard message.version == HandshakeMessage.protocolVersion else {
            return refuse(
                RPCError(.versionMismatch, "branch speaks version \(message.version), master \(HandshakeMessage.protocolVersion)"))
        }
        let branchID = message.id
        guard !branchID.isEmpty, branchID != id, !branchID.contains("\0") else {
            return refuse(RPCError(.authenticationFailed, "branch id \"\(branchID)\" is empty or taken by the master"))
        }
        if let reserved = state.withLock({ $0.reserved[key] }), reserved != branchID {
            return refuse(
                RPCError(.authenticationFailed, "this connection is for branch \"\(reserved)\", not \"\(branchID)\""))
        }
        if let secret = options.secret {
            guard let nonce = state.withLock({ $0.nonces[key] }) else { return }
            guard let proof = message.proof,
                HandshakeMessage.verify(proof: proof, secret: secret, nonce: nonce, branch: branchID)
            else {
                return refuse(
                    RPCError(
                        .authenticationFailed,
                        message.proof == nil ? "branch \"\(branchID)\" sent no proof of the secret" : "branch \"\(branchID)\" failed the secret check"))
            }
        }
        let actions = Array(Set(message.actions ?? [])).sorted()
        let outcome = state.withLock { state -> Result<([String: [String]], [RPCConnection], [String]), RPCError> in
            if let existing = state.branches[branchID], !existing.connection.isClosed {
                return .failure(RPCError(.duplicateBranch, "branch id \"\(branchID)\" is already bound"))
            }
            var duplicates: [String] = []
            let ordered = state.branches.sorted { $0.value.sequence < $1.value.sequence }
            for action in actions where options.reportDuplicateActions {
                if handlers.handler(for: action) != nil {
                    duplicates.append("\(action): the master's own handler serves it; branch \"\(branchID)\" stands by")
                } else if let first = ordered.first(where: { $0.value.actions.contains(action) }) {
                    duplicates.append("\(action): branch \"\(first.key)\" serves it; branch \"\(branchID)\" stands by")
                }
            }
            let others = state.branches.values.map(\.connection)
            state.branches[branchID] = Branch(connection: connection, actions: actions, sequence: state.nextSequence)
            state.nextSequence += 1
            state.nonces[key] = nil
            return .success((state.branches.mapValues(\.actions), others, duplicates))
        }
        switch outcome {
        case .failure(let error):
            refuse(error)
        case .success(let (directory, others, duplicates)):
            connection.markBound(peerID: branchID)
            for line in duplicates { logger.warning("action offered twice: \(line)") }
            var all = directory
            all[id] = handlers.actions
            connection.sendHandshake(
                ControlJSON.encode(
                    HandshakeMessage(
                        stage: "welcome", version: HandshakeMessage.protocolVersion, id: id, directory: all,
                        duplicates: duplicates)))
            logger.info("branch online", metadata: ["rpc.branch": "\(branchID)", "rpc.actions": "\(actions)"])
            let body = ControlJSON.encode(PresenceNotice(branch: branchID, actions: actions))
            for other in others { try? other.sendOneWay(PresenceNotice.online, body: body) }
            eventSink.yield(.online(branch: branchID, actions: actions))
        }
    }

    func route(_ call: InboundCall) -> RPCRoute {
        let deadline = call.deadline ?? ContinuousClock.now + options.defaultTimeout
        return route(action: call.action, target: call.target, caller: call.connection.peer, deadline: deadline)
    }

    func notice(_ name: String, body: ByteBuffer, from connection: RPCConnection) {
        guard let handler = handlers.messageHandler(for: name) else {
            logger.debug("a message nobody handles", metadata: ["rpc.message": "\(name)", "rpc.peer": "\(connection.peer)"])
            return
        }
        handler(body, RPCMessageContext(name: name, sender: connection.peer))
    }

    /// Sends a one-way message to a bound branch (its `onMessage` handler of `name` gets it). Messages and calls on
    /// one connection arrive in the order they were sent. Throws 30007 when the branch is not bound.
    public func send(_ name: String, body: ByteBuffer, to branch: String) throws(RPCError) {
        guard let connection = state.withLock({ $0.branches[branch]?.connection }) else {
            throw RPCError(.targetOffline, "branch \"\(branch)\" is not bound", action: name)
        }
        try connection.sendOneWay(name, body: body)
    }

    /// Stops listening, closes every connection (their pending calls fail with 30013) and ends `events`.
    public func close() async {
        let (listeners, connections) = state.withLock { state -> ([Listener], [RPCConnection]) in
            state.closed = true
            defer { state.listeners = [] }
            return (state.listeners, Array(state.connections.values))
        }
        for listener in listeners { await listener.close() }
        for connection in connections {
            connection.close()
            _ = await connection.closed()
        }
        eventSink.finish()
    }
}
