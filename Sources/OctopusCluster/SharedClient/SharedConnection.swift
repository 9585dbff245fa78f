public import OctopusRPC

/// The real client of a long connection — a registry, a configuration centre, a database's notification channel —
/// written once. A ``ClusterClient`` makes it in one process (the leader) and gives every process the same API.
///
/// ```swift
/// struct Registry: SharedConnection {
///     typealias Value = [String]                         // what subscriptions deliver and publish takes
///     func subscribe(_ key: String) async throws -> AsyncStream<[String]> { … }   // cancelled: unsubscribe
///     func publish(_ value: [String], to key: String) async throws { … }
///     func methods(_ handlers: RPCHandlers) {           // what `invoke` reaches, typed or by name
///         handlers.register(Resolve.self) { name in try await lookUp(name) }
///     }
///     func close() async { … }
/// }
/// ```
public protocol SharedConnection: Sendable {
    associatedtype Value: Codable & Sendable
    associatedtype Values: AsyncSequence & Sendable where Values.Element == Value

    /// The values of `key` as they come. The leader subscribes to a key once, however many processes want it, and
    /// ends the iteration (cancels it) when none does any more: that is the unsubscribe. A throw — here, or from
    /// the sequence — reaches the subscribers as 30017 and the leader subscribes again with backoff.
    func subscribe(_ key: String) async throws -> Values

    /// Publishes `value` under `key`.
    func publish(_ value: Value, to key: String) async throws

    /// Registers the methods `invoke` reaches: typed `RPCAction`s (checked at compile time) or raw ones by name.
    func methods(_ handlers: RPCHandlers)

    /// Closes the connection (the process stops, or is no longer the leader).
    func close() async
}
