import Foundation
import Hummingbird
import Octopus

/// Stock counts a worker knows: each worker keeps its own, kept in step by the messenger.
actor StockCache {
    private var counts: [String: Int] = [:]

    func set(_ item: String, _ count: Int) { counts[item] = count }
    func count(of item: String) -> Int? { counts[item] }
}

/// A change of stock, broadcast to every process so that every worker's cache follows.
struct StockChanged: Codable, Sendable {
    var item: String
    var count: Int
}

/// Answered by the agent: how many stock changes it has seen (a messenger call, request and response).
struct ChangesSeen: RPCAction {
    typealias Input = String
    typealias Output = Int
    static let name = "shop.changesSeen"
}

/// Every 30 seconds in one worker (and once at start): the kind of housekeeping a shop schedules.
struct CleanCarts: Subscription {
    static let schedule = Schedule(interval: "30s", type: .worker, immediate: true, timeout: .seconds(10))

    func subscribe(_ context: ScheduleContext) async throws {
        context.logger.info("removed 0 abandoned carts")
    }
}

@main
struct Shop {
    static func main() async {
        let app: OctopusApplication
        do {
            app = try OctopusApplication(configDirectory: "config")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            exit(2)
        }
        app.schedules.register { CleanCarts() }

        let stock = StockCache()
        let changes = Counter()
        app.messenger.on("stock-changed", as: StockChanged.self) { change, _ in
            await stock.set(change.item, change.count)
            await changes.increment()
        }
        app.messenger.handle(ChangesSeen.self) { _ in await changes.value }

        app.workers { context in
            // The socket the master opened for cluster.listen (8080 in config/), shared by every worker.
            guard let address = context.listeners.first, let socket = context.listeningSocket(port: address.port) else {
                throw ShopError(message: "no listening socket: set cluster.listen in config/")
            }
            return [HTTPServer(socket: socket, router: router(context, stock: stock), logger: context.logger)]
        }
        await app.run()
    }

    static func router(_ context: ProcessContext, stock: StockCache) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: AccessLog(logger: Logger(label: "access")))
        let me = context.identity.description
        router.get("hello") { _, _ in "hello from \(me)\n" }
        router.get("stock/:item") { _, request in
            let item = try request.parameters.require("item")
            guard let count = await stock.count(of: item) else { throw HTTPError(.notFound, message: "no stock of \(item)\n") }
            return "\(item): \(count) (answered by \(me))\n"
        }
        router.put("stock/:item/:count") { _, request in
            let item = try request.parameters.require("item")
            let count = try request.parameters.require("count", as: Int.self)
            // Every worker (and the agent) hears of it; this worker too, through the same path.
            try context.messenger.broadcast("stock-changed", StockChanged(item: item, count: count))
            return "\(item) set to \(count)\n"
        }
        router.get("changes") { _, _ in
            let seen = try await context.messenger.call(ChangesSeen.self, "", to: .agent, timeout: .seconds(2))
            return "the agent has seen \(seen) stock change(s)\n"
        }
        return router
    }
}

actor Counter {
    private(set) var value = 0
    func increment() { value += 1 }
}

struct ShopError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// One access-log line per request: method, path, status, duration.
struct AccessLog<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, status: response.status.code, since: start)
            return response
        } catch let error as any HTTPResponseError {
            log(request, status: error.status.code, since: start)
            throw error
        }
    }

    private func log(_ request: Request, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        logger.info("\(request.method) \(request.uri.path) \(status) \(String(format: "%.2f", ms)) ms")
    }
}
