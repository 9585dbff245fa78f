import Octopus

struct Stats: RPCAction {
    typealias Input = String
    typealias Output = Int
    static let name = "stats"
}

func wireMessages(_ app: OctopusApplication) {
    app.messenger.on("refresh-cache", as: CacheKeys.self) { keys, sender in await cache.drop(keys) }   // every process
    app.messenger.handle(Stats.self) { table in table.count }   // request/response, any RPCAction
    app.serverDidReady { context in
        let keys = CacheKeys(names: ["price:42"])
        try context.messenger.broadcast("refresh-cache", keys)      // the agent and every worker (this process too)
        try context.messenger.sendToApp("refresh-cache", keys)      // every worker
        try context.messenger.sendToAgent("refresh-cache", keys)    // the agent
        try context.messenger.sendRandom("refresh-cache", keys)     // one ready worker
        try context.messenger.sendTo(pid: 4242, "refresh-cache", keys)  // one process; throws 30007 when none has that pid
        let rows = try await context.messenger.call(Stats.self, "orders", to: .agent, timeout: .seconds(2))  // or .worker(2), .pid(p)
        context.logger.info("orders: \(rows)")
    }
}
