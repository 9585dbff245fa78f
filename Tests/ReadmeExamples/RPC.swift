import Foundation   // Data
import OctopusRPC

struct Add: RPCAction {                          // shared by both sides: types are checked at compile time
    struct Input: Codable { var a, b: Int }
    typealias Output = Int
    static let name = "add"
}

struct WhoAmI: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "whoAmI"
}

// the master
func serve() async throws -> RPCMaster {
    let handlers = RPCHandlers()
    handlers.register(Add.self) { input in input.a + input.b }
    let master = RPCMaster(id: "master", handlers: handlers, options: RPCOptions(secret: "s3cret"))
    try await master.listen(.unix("/run/app/rpc.sock"))      // or .tcp(host:port:), or .inProcess(name) for tests
    return master
}

// a branch (another process)
func call() async throws {
    let handlers = RPCHandlers()
    handlers.register(WhoAmI.self) { _ in "worker-1" }
    let branch = RPCBranch(id: "worker-1", handlers: handlers, options: RPCOptions(secret: "s3cret"))
    try await branch.connect(to: .unix("/run/app/rpc.sock"))  // throws 30009 on a wrong secret; reconnects by itself
    let sum = try await branch.call(Add.self, .init(a: 1, b: 2), timeout: .seconds(1))
    let json = try await branch.callJSON("add", Data(#"{"a":1,"b":2}"#.utf8))   // by name, for tools
    let who = try await branch.call(WhoAmI.self, "", on: "worker-2")              // on a named branch
    print(sum, json.count, who)
    for await event in branch.events {   // .online(branch:), .offline(branch:), .connected(master:), .disconnected(reason:)
        print(event)
    }
}
