import Octopus

@main struct Shop {
    static func main() async throws {
        let app = try OctopusApplication(configDirectory: "config")    // reads config/, strict: a bad one starts nothing
        app.schedules.register { CleanSessions(store: SessionStore()) } // made in the worker that runs it
        app.messenger.on("refresh-cache", as: CacheKeys.self) { keys, sender in await cache.drop(keys) }
        app.workers { context in [HTTPServer(socket: context.listeningSocket(port: 8080)!, logger: context.logger)] }
        app.agent { context in [] }                                     // services that must run once
        await app.run()   // `start` (the default), `stop` or `status`, in this process's role; exits with its status
    }
}
