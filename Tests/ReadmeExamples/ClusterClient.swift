import Octopus

struct Resolve: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "resolve"
}

/// The real client, written once; the leader (the agent) holds it, every other process uses it through the leader.
struct Registry: SharedConnection {
    typealias Value = [String]                                       // what subscriptions deliver and publish takes
    let server: RegistryServer                                       // your connection to the registry

    static func connect() async throws -> Registry { Registry(server: try await RegistryServer.connect()) }

    func subscribe(_ key: String) async throws -> AsyncStream<[String]> {   // ended by the leader: unsubscribe
        try await server.watch(key)
    }
    func publish(_ value: [String], to key: String) async throws { try await server.put(value, at: key) }
    func methods(_ handlers: RPCHandlers) {                          // what invoke reaches: typed RPCActions
        handlers.register(Resolve.self) { name in try await server.lookUp(name) }
    }
    func close() async { await server.close() }
}

func useTheRegistry(_ app: OctopusApplication) {
    let registry = app.clusterClient("registry") { try await Registry.connect() }   // made in the leader only
    app.serverDidReady { context in
        let updates = registry.subscribe("services/payments")         // AsyncStream of .value(v) / .failed(30017)
        let address = registry.current("services/payments")           // the last value delivered here: no await
        let host = try await registry.invoke(Resolve.self, "payments", idempotent: true, timeout: .seconds(2))
        context.logger.info("payments at \(host), last known \(address ?? [])")
        Task {
            for await event in updates { context.logger.info("payments: \(event)") }
        }
    }
}
