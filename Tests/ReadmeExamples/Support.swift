// What the README's examples take as the reader's own code: an HTTP server, a session store, a cache, a registry
// connection. Not part of the README; `ReadmeTests` checks that every README block is one of the other files here.
import Octopus

struct HTTPServer: Service {
    let socket: Int32
    let logger: Logger
    func run() async throws { try? await gracefulShutdown() }
}

struct SessionStore: Sendable {
    func removeExpired() async throws -> Int { 0 }
}

struct CacheKeys: Codable, Sendable {
    var names: [String]
}

actor Cache {
    var entries: [String: String] = [:]
    func drop(_ keys: CacheKeys) { for name in keys.names { entries[name] = nil } }
}

let cache = Cache()

struct RegistryServer: Sendable {
    static func connect() async throws -> RegistryServer { RegistryServer() }
    func watch(_ key: String) async throws -> AsyncStream<[String]> { AsyncStream { $0.finish() } }
    func put(_ value: [String], at key: String) async throws {}
    func lookUp(_ name: String) async throws -> String { "10.0.0.7:443" }
    func close() async {}
}
