public import Foundation
public import Logging
import NIOCore
public import OctopusRPC
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a cluster client's processes are.
public enum ClusterClientMode: Sendable {
    /// One process: the real client is here, no socket.
    case single
    /// Processes started on their own on one host: the one that holds `<directory>/<name>.lock` (`flock`) leads and
    /// listens on `<directory>/<name>.sock`; the others follow, and one of them takes over the moment the leader
    /// dies. The directory should be private (0700).
    case free(directory: String)
    /// A cluster's processes: the agent leads, the workers follow, through `<runDirectory>/client-<name>.sock`, bound
    /// with the cluster's secret. (An application makes these; see `OctopusApplication.clusterClient`.)
    case cluster(leads: Bool, runDirectory: String, secret: [UInt8])
}

/// What a subscription delivers: values, and the leader's failures to subscribe (it tries again with backoff).
public enum SubscriptionEvent<Value: Sendable>: Sendable {
    case value(Value)
    /// 30017: the leader's real client could not subscribe; values follow once it can.
    case failed(RPCError)
}

/// What a client says of its own role.
public enum ClusterClientEvent: Sendable, Equatable {
    /// This process leads, in this term.
    case leading(term: UInt64)
    /// This process follows the leader of this term.
    case following(term: UInt64)
    /// The leader went away; this process looks for (or becomes) the next.
    case leaderLost
}

public struct ClusterClientOptions: Sendable {
    /// An invoke's deadline when the call gives none.
    public var invokeTimeout: Duration = .seconds(5)
    /// How long `start` waits for a leader to answer.
    public var connectTimeout: Duration = .seconds(30)
    /// The first wait before a failed subscription is tried again; it doubles up to `maximumRetryDelay`.
    public var retryDelay: Duration = .milliseconds(50)
    public var maximumRetryDelay: Duration = .seconds(5)

    public init() {}
}

/// cluster-client's leader/follower model on the RPC core: one process (the leader) holds the real long connection,
/// the others use it through a local socket, with the same API everywhere.
///
/// ```swift
/// let registry = ClusterClient(name: "registry") { try await Registry.connect() }  // made in the leader only
/// try await registry.start(.free(directory: "/run/shop"))
/// for await event in registry.subscribe("services/payments") { … }   // the leader subscribes once for everyone
/// let address = registry.current("services/payments")                // no await, no round trip
/// let answer = try await registry.invoke(Resolve.self, "payments", idempotent: true)
/// ```
///
/// - The leader subscribes to each key once however many processes want it, keeps the last value and gives it at
///   once to a late subscriber; a follower's local subscribers of a key share one remote subscription, removed with
///   the last of them.
/// - A subscription the real client cannot make reaches the subscribers as 30017 and is tried again with backoff.
/// - Invokes carry a deadline (`invokeTimeout` by default). When the leader goes away, pending invokes fail at once
///   (30014) unless marked idempotent: those are sent again to the next leader, within their deadline.
/// - Every message carries the leadership's term; one from another term is refused (30018) and its connection
///   closed, so a leader that is no longer one is not listened to.
/// - Failover is immediate: the leader's lock is released by the kernel when it dies, a waiting follower takes it,
///   makes the real client, listens, and the others reconnect and subscribe again.
public final class ClusterClient<Connection: SharedConnection>: Sendable {
    public typealias Value = Connection.Value

    public let name: String
    private let optionsBox: Mutex<ClusterClientOptions>
    /// The deadlines and backoffs in force (an application sets the invoke timeout from `cluster.client`).
    public var options: ClusterClientOptions { optionsBox.withLock { $0 } }
    let makeClient: @Sendable () async throws -> Connection
    let logger: Logger
    let codec = JSONCodec()

    private struct State {
        var mode: ClusterClientMode?
        var leader: Leader<Connection>?
        var follower: Follower<Connection>?
        var lock: LeaderLock?
        var term: UInt64 = 0
        var local: [String: [Int: AsyncStream<SubscriptionEvent<Value>>.Continuation]] = [:]
        var last: [String: Value] = [:]
        var nextID = 0
        var closed = false
    }

    private let state = Mutex(State())
    /// Open while this process has a leader to talk to (itself or another); closed while it looks for one.
    private let connected = Mutex(Latch())
    public let events: AsyncStream<ClusterClientEvent>
    private let eventSink: AsyncStream<ClusterClientEvent>.Continuation

    /// - Parameter makeClient: makes the real client; it runs only in the process that leads (and again in one that
    ///   takes over).
    public init(
        name: String, options: ClusterClientOptions = ClusterClientOptions(),
        logger: Logger = Logger(label: "octopus.client"), makeClient: @escaping @Sendable () async throws -> Connection
    ) {
        self.name = name
        self.optionsBox = Mutex(options)
        self.logger = logger
        self.makeClient = makeClient
        (events, eventSink) = AsyncStream.makeStream(of: ClusterClientEvent.self, bufferingPolicy: .bufferingNewest(64))
    }

    /// Changes the options before `start` (an application applies its configuration).
    package func configure(_ change: (inout ClusterClientOptions) -> Void) {
        optionsBox.withLock { change(&$0) }
    }

    // MARK: Starting

    /// Takes part: leads (making the real client) or follows, as the mode and the election decide; returns once this
    /// process leads or is connected to the leader (throws 30002 when no leader has answered within
    /// `options.connectTimeout`).
    public func start(_ mode: ClusterClientMode) async throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }) else {
            throw ClusterError(.client, "a cluster client's name is letters, digits, '.', '-' and '_' (it names files): \"\(name)\"")
        }
        try state.withLock { state throws(ClusterError) in
            guard state.mode == nil else { throw ClusterError(.client, "cluster client \(name) is already started") }
            state.mode = mode
        }
        if case .single = mode {} else if socketPath.utf8.count > 107 {
            throw ClusterError(.client, "the socket path of cluster client \(name) is too long for a Unix socket (\(socketPath.utf8.count) bytes, at most 107): \(socketPath)")
        }
        switch mode {
        case .single:
            try await lead(term: 1, listen: nil)
        case .free:
            let lock = LeaderLock(base: basePath)
            state.withLock { $0.lock = lock }
            if lock.tryAcquire() {
                try await lead(term: lock.nextTerm(), listen: (.unix(socketPath), nil))
            } else {
                // Following, and waiting on the lock at the same time: a leader that dies before anyone connected
                // still hands over.
                follow(secret: nil)
                waitForLeadership(lock)
                try await waitUntilConnected()
            }
        case .cluster(let leads, _, let secret):
            if leads {
                let lock = LeaderLock(base: basePath)
                state.withLock { $0.lock = lock }
                // A previous agent that is not quite gone still holds it: wait, never two leaders.
                if !lock.tryAcquire() {
                    guard await lock.acquireWaiting(cancelled: { [weak self] in self?.isClosed ?? true }) else { return }
                }
                try await lead(term: lock.nextTerm(), listen: (.unix(socketPath), secret))
            } else {
                follow(secret: secret)
                try await waitUntilConnected()
            }
        }
    }

    private func waitUntilConnected() async throws {
        let latch = connected.withLock { $0 }
        guard await value(of: { await latch.wait() }, orNilAfter: options.connectTimeout) != nil else {
            throw RPCError(.notConnected, "no leader of \(name) answered at \(socketPath) within \(options.connectTimeout)")
        }
    }

    private var basePath: String {
        switch state.withLock({ $0.mode }) {
        case .free(let directory): directory + "/" + name
        case .cluster(_, let runDirectory, _): runDirectory + "/client-" + name
        case .single, nil: name
        }
    }

    var socketPath: String { basePath + ".sock" }

    private var isClosed: Bool { state.withLock { $0.closed } }

    /// Whether this process leads now.
    public var isLeader: Bool { state.withLock { $0.leader != nil } }

    /// The term of the leadership this process leads or follows.
    public var term: UInt64 { state.withLock { $0.term } }

    private func lead(term: UInt64, listen: (address: RPCAddress, secret: [UInt8]?)?) async throws {
        let client = try await makeClient()
        let leader = Leader(owner: self, client: client, term: term)
        let previous = state.withLock { state -> Follower<Connection>? in
            state.term = term
            state.leader = leader
            defer { state.follower = nil }
            return state.follower
        }
        await previous?.close()
        if let listen { try await leader.listen(listen.address, secret: listen.secret) }
        // Every key someone here wants, subscribed at the new leader.
        for key in state.withLock({ Array($0.local.keys) }) { leader.subscribe(key, .local) }
        logger.info("leading \(name) in term \(term)")
        connected.withLock { $0.open() }
        eventSink.yield(.leading(term: term))
    }

    private func follow(secret: [UInt8]?) {
        let follower = Follower(owner: self, secret: secret)
        state.withLock { $0.follower = follower }
        follower.start(socketPath)
    }

    /// Free mode: a follower waits on the lock in a thread; when the leader dies it takes over. Making the real
    /// client may fail: the lock is given back and taken again after a backoff (another follower may lead meanwhile).
    private func waitForLeadership(_ lock: LeaderLock) {
        Task { [weak self] in
            var delay = self?.options.retryDelay ?? .milliseconds(50)
            while true {
                let won = await lock.acquireWaiting(cancelled: { [weak self] in self?.isClosed ?? true })
                guard won, let self else { return }
                do {
                    try await self.lead(term: lock.nextTerm(), listen: (.unix(self.socketPath), nil))
                    return
                } catch {
                    self.logger.error("could not take over as the leader of \(self.name): \(error); trying again in \(delay)")
                    lock.release()
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, self.options.maximumRetryDelay)
                }
            }
        }
    }

    // MARK: Follower side

    /// The follower has a leader (again): it learns the term and subscribes again to every key wanted here.
    func followerConnected(term: UInt64) {
        let keys = state.withLock { state -> [String] in
            state.term = max(state.term, term)
            return Array(state.local.keys)
        }
        logger.info("following the leader of \(name) in term \(term)")
        connected.withLock { $0.open() }
        eventSink.yield(.following(term: term))
        for key in keys { state.withLock { $0.follower }?.subscribe(key) }
    }

    func followerLost() {
        guard state.withLock({ $0.leader == nil && !$0.closed }) else { return }
        connected.withLock { latch in if latch.isOpen { latch = Latch() } }
        eventSink.yield(.leaderLost)
    }

    /// The highest term this process has seen; a push from a lower one is refused.
    var knownTerm: UInt64 { state.withLock { $0.term } }

    // MARK: Subscribing

    /// The values of `key` from now on (the last one at once, when the leader has it), until the stream is dropped;
    /// when the last local subscriber of a key goes, so does this process's subscription at the leader.
    public func subscribe(_ key: String) -> AsyncStream<SubscriptionEvent<Value>> {
        let (stream, continuation) = AsyncStream.makeStream(of: SubscriptionEvent<Value>.self)
        let (id, first, leader, follower, cached) = state.withLock { state in
            state.nextID += 1
            let first = state.local[key]?.isEmpty ?? true
            state.local[key, default: [:]][state.nextID] = continuation
            return (state.nextID, first, state.leader, state.follower, state.last[key])
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(key, id) }
        if first {
            if let leader { leader.subscribe(key, .local) } else { follower?.subscribe(key) }
        } else if let cached {
            continuation.yield(.value(cached))
        }
        return stream
    }

    private func unsubscribe(_ key: String, _ id: Int) {
        let (last, leader, follower) = state.withLock { state -> (Bool, Leader<Connection>?, Follower<Connection>?) in
            state.local[key]?[id] = nil
            guard state.local[key]?.isEmpty ?? false else { return (false, nil, nil) }
            state.local[key] = nil
            return (true, state.leader, state.follower)
        }
        guard last else { return }
        if let leader { leader.unsubscribe(key, .local) } else { follower?.unsubscribe(key) }
    }

    /// The last value of `key` delivered in this process (for the keys subscribed here): a synchronous read, no
    /// round trip (egg's APIClient layer).
    public func current(_ key: String) -> Value? {
        state.withLock { $0.last[key] }
    }

    /// A value for the local subscribers of `key`.
    func deliverLocally(_ key: String, _ value: Value) {
        let subscribers = state.withLock { state -> [AsyncStream<SubscriptionEvent<Value>>.Continuation] in
            state.last[key] = value
            return Array((state.local[key] ?? [:]).values)
        }
        for subscriber in subscribers { subscriber.yield(.value(value)) }
    }

    func failLocally(_ key: String, _ error: RPCError) {
        let subscribers = state.withLock { Array(($0.local[key] ?? [:]).values) }
        for subscriber in subscribers { subscriber.yield(.failed(error)) }
    }

    // MARK: Publishing and invoking

    /// Publishes `value` under `key` through the real client.
    public func publish(_ value: Value, to key: String) async throws {
        var body = ByteBuffer()
        try codec.encode(value, into: &body)
        _ = try await perform(ClientWire.publish, name: key, body: body, idempotent: false, timeout: nil) { leader in
            try await leader.client.publish(value, to: key)
            return ByteBuffer()
        }
    }

    /// Invokes a typed method of the real client (in the leader), within `timeout`. With `idempotent`, a call that
    /// loses its leader is sent again to the next one; otherwise it fails at once (30014). Errors are `RPCError`s in
    /// every process: what the real client throws comes as 30006 with its description.
    public func invoke<A: RPCAction>(
        _ action: A.Type, _ input: A.Input, idempotent: Bool = false, timeout: Duration? = nil
    ) async throws -> A.Output {
        var body = ByteBuffer()
        try codec.encode(input, into: &body)
        let answer = try await invokeRaw(A.name, body: body, idempotent: idempotent, timeout: timeout)
        return try codec.decode(A.Output.self, from: answer)
    }

    /// Invokes a method by name with a JSON body; returns the JSON answer.
    public func invoke(_ method: String, json: Data, idempotent: Bool = false, timeout: Duration? = nil) async throws -> Data {
        Data(try await invokeRaw(method, body: ByteBuffer(bytes: json), idempotent: idempotent, timeout: timeout).readableBytesView)
    }

    func invokeRaw(_ method: String, body: ByteBuffer, idempotent: Bool, timeout: Duration?) async throws -> ByteBuffer {
        do {
            return try await perform(ClientWire.invoke(method), name: "", label: method, body: body, idempotent: idempotent, timeout: timeout) { leader in
                try await leader.invoke(method, body: body, caller: nil, deadline: nil)
            }
        } catch let error as RPCError where error.code == .noSuchAction {
            throw RPCError(.noSuchAction, "the real client of \(name) has no method \"\(method)\"", action: method)
        }
    }

    /// Runs `here` when this process leads, else sends the request to the leader; waits for a leader while there is
    /// none (within the deadline); sends again after losing one only when `idempotent`.
    private func perform(
        _ action: String, name: String, label: String? = nil, body: ByteBuffer, idempotent: Bool, timeout: Duration?,
        here: (Leader<Connection>) async throws -> ByteBuffer
    ) async throws -> ByteBuffer {
        let deadline = ContinuousClock.now + (timeout ?? options.invokeTimeout)
        let label = label ?? name
        var sentOnce = false
        while true {
            let (leader, follower, closed, started) = state.withLock { ($0.leader, $0.follower, $0.closed, $0.mode != nil) }
            if closed { throw RPCError(.closed, "cluster client \(self.name) is closed", action: label) }
            if !started { throw RPCError(.notConnected, "cluster client \(self.name) is not started", action: label) }
            if let leader {
                // The same errors as through a follower: the real client's own come as 30006 with their description.
                do { return try await here(leader) } catch { throw RPCError.wrapping(error, action: label) }
            }
            if let follower, follower.isReady {
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else { throw RPCError(.timedOut, "no answer before the deadline", action: label) }
                do {
                    sentOnce = true
                    return try await follower.call(action, name: name, body: body, timeout: remaining)
                } catch let error as RPCError where [.disconnected, .notConnected, .closed].contains(error.code) {
                    guard idempotent else {
                        throw RPCError(.disconnected, "the leader went away while the call was pending; not sent again (not idempotent)", action: label)
                    }
                    logger.debug("the leader went away; sending \(label) again (idempotent)")
                }
            } else if sentOnce && !idempotent {
                throw RPCError(.disconnected, "the leader went away", action: label)
            }
            // No leader to talk to now: wait for one, within the deadline.
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw RPCError(.timedOut, "no leader before the deadline", action: label) }
            let latch = connected.withLock { $0 }
            _ = await value(of: { await latch.wait() }, orNilAfter: min(remaining, .milliseconds(100)))
        }
    }

    // MARK: Closing

    /// Leaves: a leader closes the real client and its socket (a follower elsewhere takes over), a follower its
    /// connection. Local subscriptions end.
    public func close() async {
        let (leader, follower, lock, subscribers) = state.withLock { state in
            state.closed = true
            defer {
                state.leader = nil
                state.follower = nil
                state.local = [:]
            }
            return (state.leader, state.follower, state.lock, state.local.values.flatMap(\.values))
        }
        await leader?.close()
        await follower?.close()
        lock?.release()
        await lock?.stopWaiting()  // a follower's thread waiting to lead
        for subscriber in subscribers { subscriber.finish() }
        eventSink.finish()
    }
}

/// The frames of a cluster client: a term, a name (the key or the method) and a body.
enum ClientWire {
    static let hello = "cc.hello"
    static let subscribe = "cc.subscribe"
    static let unsubscribe = "cc.unsubscribe"
    static let publish = "cc.publish"
    /// follower → leader: a method of the real client (each has an action of its own).
    static func invoke(_ method: String) -> String { "cc.invoke/" + method }
    /// leader → follower: a value of a key.
    static let value = "cc.value"
    /// leader → follower: the leader could not subscribe to a key (30017).
    static let failed = "cc.failed"

    static func encode(term: UInt64, name: String, body: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(10 + name.utf8.count + body.readableBytes)
        buffer.writeInteger(term)
        buffer.writeInteger(UInt16(truncatingIfNeeded: name.utf8.count))
        buffer.writeString(name)
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    static func decode(_ buffer: ByteBuffer) -> (term: UInt64, name: String, body: ByteBuffer)? {
        var buffer = buffer
        guard let term = buffer.readInteger(as: UInt64.self), let length = buffer.readInteger(as: UInt16.self),
            let name = buffer.readString(length: Int(length))
        else { return nil }
        return (term, name, buffer)
    }
}
