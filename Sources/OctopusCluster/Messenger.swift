import Foundation
import Logging
import NIOCore
public import OctopusRPC
import Synchronization

/// A message the messenger delivered: its action, who sent it, and its payload.
public struct MessengerMessage: Sendable {
    public var action: String
    public var from: ProcessIdentity
    public var route: MessengerRoute
    let payload: ByteBuffer
    let codec: JSONCodec

    /// The payload's raw bytes (JSON as the sender's `Codable` value encoded it).
    public var bytes: [UInt8] { Array(payload.readableBytesView) }

    /// The payload as the sender's type.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try codec.decode(T.self, from: payload)
    }
}

/// egg's messenger between the processes of a cluster: `broadcast` (the agent and every worker), `sendToApp`
/// (every worker), `sendToAgent`, `sendRandom` (one worker), `sendTo(pid:)`, with typed payloads (`Codable`, JSON);
/// and a request/response form, `call`, riding the RPC core's calls.
///
/// ```swift
/// app.messenger.on("refresh-cache", as: CacheKeys.self) { keys, sender in
///     await cache.drop(keys)
/// }
/// try context.messenger.sendToApp("refresh-cache", CacheKeys(["users"]))
/// ```
///
/// Sending does not wait: the message goes to the master, which delivers it to each process the route names. A
/// process that is not ready yet (starting, or restarting after a crash) gets it when it is (each process's queue is
/// bounded by `cluster.messageQueue`; an overflow is counted and logged). `sendTo(pid:)` a pid that is no process of
/// the cluster throws at once (each process knows the cluster's members, as the master last told it). A message in
/// flight to a process that dies is lost with it, as in egg. Handlers of one process run one at a time, in the order
/// the messages arrived, on the event loop of the process's channel to the master: they must not block, and long
/// work belongs in a task of its own.
public final class Messenger: Sendable {
    public typealias Handler = @Sendable (MessengerMessage) async -> Void

    /// The calls this process answers: handlers registered with ``handle(_:_:)`` and the cluster's own.
    public let rpcHandlers: RPCHandlers
    private let handlers = Mutex<[String: Handler]>([:])
    private struct Link: Sendable {
        let branch: RPCBranch
        let identity: ProcessIdentity
        let logger: Logger
        let members: @Sendable () -> Membership?
    }

    private let link = Mutex<Link?>(nil)
    private let inbox: AsyncStream<MessengerMessage>
    private let inboxSink: AsyncStream<MessengerMessage>.Continuation
    private let codec = JSONCodec()

    public init() {
        rpcHandlers = RPCHandlers()
        (inbox, inboxSink) = AsyncStream.makeStream(of: MessengerMessage.self)
    }

    // MARK: Receiving

    /// Runs `handler` for every message of `action` this process receives (registered again: replaced).
    public func on(_ action: String, _ handler: @escaping Handler) {
        handlers.withLock { $0[action] = handler }
    }

    /// Runs `handler` with the payload decoded as `T`; a payload that does not decode is logged and dropped.
    public func on<T: Decodable & Sendable>(
        _ action: String, as type: T.Type, _ handler: @escaping @Sendable (T, ProcessIdentity) async -> Void
    ) {
        on(action) { [weak self] message in
            do {
                await handler(try message.decode(T.self), message.from)
            } catch {
                self?.logger?.warning(
                    "messenger: a \"\(action)\" message from \(message.from) does not decode as \(T.self): \(error)")
            }
        }
    }

    /// Answers `call`s of a typed action in this process.
    public func handle<A: RPCAction>(
        _ action: A.Type, _ handler: nonisolated(nonsending) @escaping @Sendable (A.Input) async throws -> A.Output
    ) {
        rpcHandlers.register(action) { input, _ in try await handler(input) }
    }

    // MARK: Sending

    /// To the agent and every worker, this process included.
    public func broadcast<T: Encodable>(_ action: String, _ payload: T) throws {
        try send(action, payload, to: .broadcast)
    }

    /// To every worker.
    public func sendToApp<T: Encodable>(_ action: String, _ payload: T) throws {
        try send(action, payload, to: .app)
    }

    /// To the agent.
    public func sendToAgent<T: Encodable>(_ action: String, _ payload: T) throws {
        try send(action, payload, to: .agent)
    }

    /// To one worker, chosen at random among the ready ones.
    public func sendRandom<T: Encodable>(_ action: String, _ payload: T) throws {
        try send(action, payload, to: .random)
    }

    /// To the process with this pid; throws (30007) when no process of the cluster has it.
    public func sendTo<T: Encodable>(pid: Int32, _ action: String, _ payload: T) throws {
        try send(action, payload, to: .pid(pid))
    }

    /// Sends by any route.
    public func send<T: Encodable>(_ action: String, _ payload: T, to route: MessengerRoute) throws {
        let link = try joined()
        if case .pid(let pid) = route, link.members()?.members.contains(where: { $0.identity.pid == pid }) != true {
            throw RPCError(.targetOffline, "no process of the cluster has pid \(pid)", action: action)
        }
        var body = ByteBuffer()
        try codec.encode(payload, into: &body)
        let envelope = try MessageEnvelope(action: action, route: route, from: link.identity, payload: body).encoded()
        try link.branch.send(ClusterMessage.send, body: envelope)
    }

    /// Calls a typed action in one process (`.agent`, `.worker(id)`, `.pid(p)` or `.random`), which answers it
    /// with ``handle(_:_:)``; fails with the RPC core's errors (30003 past the deadline, 30007 when that process is
    /// not running).
    public func call<A: RPCAction>(
        _ action: A.Type, _ input: A.Input, to route: MessengerRoute, timeout: Duration? = nil
    ) async throws -> A.Output {
        let link = try joined()
        let members = (link.members()?.members ?? []).filter { $0.state != "stopping" }
        let target: Membership.Member?
        switch route {
        case .agent: target = members.first { $0.identity.role == .agent && $0.current }
        case .worker(let id): target = members.first { $0.identity.workerID == id && $0.current }
        case .pid(let pid): target = members.first { $0.identity.pid == pid }
        case .random: target = members.filter { $0.identity.role == .worker && $0.state == "ready" }.randomElement()
        case .broadcast, .app: throw RPCError(.malformed, "a call goes to one process, not to \(route)", action: A.name)
        }
        guard let target else { throw RPCError(.targetOffline, "\(route) is not running now", action: A.name) }
        return try await link.branch.call(action, input, on: target.identity.branchID, timeout: timeout)
    }

    /// The executor of this process's channel to the master, once joined: a task that prefers it
    /// (`withTaskExecutorPreference(messenger.executor) { … }`) sends and receives without changing threads, which is
    /// the lowest latency for code that sends one message after another. It shares its thread with the channel's I/O:
    /// do not block in such a task.
    public var executor: (any TaskExecutor)? { link.withLock { $0?.branch.executor } }

    /// This process, once it has joined its cluster.
    public var identity: ProcessIdentity? { link.withLock { $0?.identity } }

    // MARK: The cluster's side

    private var logger: Logger? { link.withLock { $0?.logger } }

    private func joined() throws(RPCError) -> Link {
        guard let link = link.withLock({ $0 }) else {
            throw RPCError(
                .notConnected, "the messenger works in the agent and the workers of a running cluster; this process is not one")
        }
        return link
    }

    /// Joins the cluster: messages can be sent, and received ones are handed to the handlers one at a time.
    func attach(
        branch: RPCBranch, identity: ProcessIdentity, logger: Logger, members: @escaping @Sendable () -> Membership?
    ) {
        link.withLock { $0 = Link(branch: branch, identity: identity, logger: logger, members: members) }
        let inbox = self.inbox
        // On the channel's event loop: a message read there reaches its handler without a thread hop, and what the
        // handler sends leaves without one.
        Task(executorPreference: branch.executor) { [weak self] in
            for await message in inbox {
                guard let self else { return }
                if let handler = self.handlers.withLock({ $0[message.action] }) {
                    await handler(message)
                } else {
                    logger.debug("messenger: no handler for \"\(message.action)\" (from \(message.from))")
                }
            }
        }
    }

    /// A delivered envelope.
    func receive(_ envelope: MessageEnvelope) {
        inboxSink.yield(
            MessengerMessage(
                action: envelope.header.action, from: envelope.header.from, route: envelope.header.route,
                payload: envelope.payload, codec: codec))
    }
}
