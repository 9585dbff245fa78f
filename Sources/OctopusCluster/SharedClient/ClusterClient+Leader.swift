import Foundation
import Logging
import NIOCore
import OctopusRPC
import Synchronization

/// The leader's side: the real client, one subscription per key for every subscriber here and in the followers, the
/// last value of each key, and the socket the followers use.
final class Leader<Connection: SharedConnection>: Sendable {
    typealias Value = Connection.Value

    enum Subscriber: Hashable, Sendable {
        case local
        case remote(String)
    }

    private struct Key {
        var subscribers: Set<Subscriber> = []
        var task: Task<Void, Never>?
        /// The last value, encoded (as followers get it) and as it is.
        var last: (encoded: ByteBuffer, value: Value)?
    }

    let client: Connection
    let term: UInt64
    private let ownerReference: WeakReference<ClusterClient<Connection>>
    private var owner: ClusterClient<Connection>? { ownerReference.value }
    private let logger: Logger
    private let name: String
    private let options: ClusterClientOptions
    private let methods = RPCHandlers()
    private let keys = Mutex<[String: Key]>([:])
    private let master = Mutex<RPCMaster?>(nil)

    init(owner: ClusterClient<Connection>, client: Connection, term: UInt64) {
        self.ownerReference = WeakReference(owner)
        self.client = client
        self.term = term
        self.logger = owner.logger
        self.name = owner.name
        self.options = owner.options
        client.methods(methods)
    }

    // MARK: The followers' socket

    func listen(_ address: RPCAddress, secret: [UInt8]?) async throws {
        let handlers = RPCHandlers()
        var options = RPCOptions()
        options.secret = secret
        options.reportDuplicateActions = false
        options.heartbeatInterval = .seconds(5)
        var quiet = logger
        quiet.logLevel = .warning
        let master = RPCMaster(id: "leader", handlers: handlers, options: options, logger: quiet)
        let term = self.term
        /// A request of another term closes its connection: a follower talking to a leadership that is over.
        let checked: @Sendable (ByteBuffer, RPCCallContext) throws -> (name: String, body: ByteBuffer) = { body, context in
            guard let (requestTerm, name, payload) = ClientWire.decode(body) else {
                throw RPCRefusal(RPCError(.malformed, "not a cluster client request"))
            }
            guard requestTerm == term else {
                throw RPCRefusal(RPCError(.staleTerm, "a request for term \(requestTerm); this leader's term is \(term)"))
            }
            return (name, payload)
        }
        handlers.register(ClientHello.self) { _ in term }
        // Subscribing answers in place (no task), so a follower's later requests see it done.
        handlers.registerRaw(ClientWire.subscribe) { [weak self] body, context throws -> ByteBuffer in
            let (key, _) = try checked(body, context)
            if let caller = context.caller { self?.subscribe(key, .remote(caller)) }
            return ByteBuffer()
        }
        handlers.registerRaw(ClientWire.unsubscribe) { [weak self] body, context throws -> ByteBuffer in
            let (key, _) = try checked(body, context)
            if let caller = context.caller { self?.unsubscribe(key, .remote(caller)) }
            return ByteBuffer()
        }
        handlers.registerRaw(ClientWire.publish) { [weak self] body, context in
            let (key, payload) = try checked(body, context)
            guard let self else { throw RPCError(.closed, "the leader is closing") }
            let value = try JSONCodec().decode(Value.self, from: payload)
            try await self.client.publish(value, to: key)
            return ByteBuffer()
        }
        // Each method of the real client under its own action, served as it was registered: a method that answers
        // without suspending is answered on the connection's event loop, with no task.
        for method in methods.actions {
            let action = ClientWire.invoke(method)
            if let immediate = methods.immediateHandler(for: method) {
                handlers.registerRaw(action) { body, context throws -> ByteBuffer in
                    let (_, payload) = try checked(body, context)
                    return try immediate(payload, RPCCallContext(action: method, caller: context.caller, deadline: context.deadline))
                }
            } else if let run = methods.handler(for: method) {
                handlers.registerRaw(action) { body, context in
                    let (_, payload) = try checked(body, context)
                    return try await run(payload, RPCCallContext(action: method, caller: context.caller, deadline: context.deadline))
                }
            }
        }
        try await master.listen(address)
        if case .unix(let path) = address { chmod(path, 0o600) }
        self.master.withLock { $0 = master }
        // A follower that goes away has no subscriptions any more.
        Task { [weak self] in
            for await event in master.events {
                if case .offline(let branch) = event { self?.forget(branch) }
            }
        }
    }

    // MARK: Subscriptions

    /// Adds a subscriber of `key`: the first one starts the real client's subscription; a later one gets the last
    /// value at once.
    func subscribe(_ key: String, _ subscriber: Subscriber) {
        let (start, last) = keys.withLock { keys -> (Bool, (encoded: ByteBuffer, value: Value)?) in
            let start = keys[key] == nil
            keys[key, default: Key()].subscribers.insert(subscriber)
            return (start, keys[key]?.last)
        }
        if start {
            let task = Task { [weak self] in
                guard let self else { return }
                await self.follow(key)
            }
            keys.withLock { $0[key]?.task = task }
        } else if let last {
            send(key, last, to: [subscriber])
        }
    }

    func unsubscribe(_ key: String, _ subscriber: Subscriber) {
        let task = keys.withLock { keys -> Task<Void, Never>? in
            keys[key]?.subscribers.remove(subscriber)
            guard keys[key]?.subscribers.isEmpty ?? false else { return nil }
            defer { keys[key] = nil }
            return keys[key]?.task
        }
        // The real client's iteration ends: its unsubscribe.
        task?.cancel()
    }

    private func forget(_ branch: String) {
        let keysOfBranch = keys.withLock { keys in keys.filter { $0.value.subscribers.contains(.remote(branch)) }.map(\.key) }
        for key in keysOfBranch { unsubscribe(key, .remote(branch)) }
    }

    /// Iterates the real client's subscription of `key` until cancelled, subscribing again with backoff after a
    /// failure (which the subscribers hear as 30017).
    private func follow(_ key: String) async {
        var delay = options.retryDelay
        while !Task.isCancelled {
            do {
                let values = try await client.subscribe(key)
                delay = options.retryDelay
                for try await value in values {
                    if Task.isCancelled { return }
                    var encoded = ByteBuffer()
                    try JSONCodec().encode(value, into: &encoded)
                    let subscribers = keys.withLock { keys -> Set<Subscriber> in
                        keys[key]?.last = (encoded, value)
                        return keys[key]?.subscribers ?? []
                    }
                    send(key, (encoded, value), to: subscribers)
                }
                if Task.isCancelled { return }
                throw RPCError(.subscribeFailed, "the real client ended the subscription of \(key)")
            } catch {
                if Task.isCancelled { return }
                let failure = RPCError(.subscribeFailed, "subscribing to \(key) failed: \(error); trying again in \(delay)")
                logger.warning("\(name): \(failure.message)")
                let subscribers = keys.withLock { $0[key]?.subscribers ?? [] }
                fail(key, failure, to: subscribers)
                do { try await Task.sleep(for: delay) } catch { return }
                delay = min(delay * 2, options.maximumRetryDelay)
            }
        }
    }

    private func send(_ key: String, _ value: (encoded: ByteBuffer, value: Value), to subscribers: Set<Subscriber>) {
        let master = self.master.withLock { $0 }
        var frame: ByteBuffer?
        for subscriber in subscribers {
            switch subscriber {
            case .local:
                owner?.deliverLocally(key, value.value)
            case .remote(let branch):
                if frame == nil { frame = ClientWire.encode(term: term, name: key, body: value.encoded) }
                try? master?.send(ClientWire.value, body: frame!, to: branch)
            }
        }
    }

    private func fail(_ key: String, _ error: RPCError, to subscribers: Set<Subscriber>) {
        let master = self.master.withLock { $0 }
        for subscriber in subscribers {
            switch subscriber {
            case .local:
                owner?.failLocally(key, error)
            case .remote(let branch):
                try? master?.send(
                    ClientWire.failed, body: ClientWire.encode(term: term, name: key, body: ByteBuffer(string: error.message)),
                    to: branch)
            }
        }
    }

    // MARK: Invokes

    func invoke(_ method: String, body: ByteBuffer, caller: String?, deadline: ContinuousClock.Instant?) async throws -> ByteBuffer {
        guard let handler = methods.handler(for: method) else {
            throw RPCError(.noSuchAction, "the real client of \(name) has no method \"\(method)\"", action: method)
        }
        return try await handler(body, RPCCallContext(action: method, caller: caller, deadline: deadline))
    }

    func close() async {
        let (master, tasks) = (self.master.withLock { $0 }, keys.withLock { keys in keys.values.compactMap(\.task) })
        for task in tasks { task.cancel() }
        await master?.close()
        await client.close()
    }
}

/// follower → leader: the leader's term (asked at each connection).
struct ClientHello: RPCAction {
    typealias Input = Int
    typealias Output = UInt64
    static let name = ClientWire.hello
}

/// A weak reference that can cross threads (set once, read anywhere).
final class WeakReference<Object: AnyObject>: @unchecked Sendable {
    private(set) weak var value: Object?

    init(_ value: Object) {
        self.value = value
    }
}
