import Foundation
import NIOCore
import Synchronization
import Testing
import TestSupport

@testable import OctopusRPC

/// Collects a master's or branch's events as they come.
final class EventLog: Sendable {
    private let events = Mutex<[RPCEvent]>([])
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ stream: AsyncStream<RPCEvent>) {
        let t = Task { [self] in
            for await event in stream { self.events.withLock { $0.append(event) } }
        }
        task.withLock { $0 = t }
    }

    var all: [RPCEvent] { events.withLock { $0 } }
    func contains(_ event: RPCEvent) -> Bool { all.contains(event) }
    func count(where predicate: (RPCEvent) -> Bool) -> Int { all.filter(predicate).count }
}

struct WhoAmI: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "whoami"
}

struct Double2: RPCAction {
    typealias Input = Int
    typealias Output = Int
    static let name = "double"
}

@Suite struct MasterBranchTests {
    func handlers(_ name: String, _ register: (RPCHandlers) -> Void = { _ in }) -> RPCHandlers {
        let table = RPCHandlers()
        table.register(WhoAmI.self) { suffix, context in "\(name) for \(context.caller ?? "?")\(suffix)" }
        register(table)
        return table
    }

    @Test func routingBranchToMasterMasterToBranchAndBranchToBranch() async throws {
        let address = RPCAddress.unix(socketPath())
        let master = RPCMaster(handlers: handlers("master") { $0.register(Add.self) { $0.a + $0.b } }, options: testOptions(), logger: quiet)
        try await master.listen(address)
        let b1 = RPCBranch(id: "b1", handlers: handlers("b1") { $0.register(Double2.self) { n, _ in 2 * n } }, options: testOptions(), logger: quiet)
        let b2 = RPCBranch(id: "b2", handlers: handlers("b2") { $0.register(Echo.self) { s, _ in s } }, options: testOptions(), logger: quiet)
        try await b1.connect(to: address)
        try await b2.connect(to: address)

        // branch → master
        #expect(try await b1.call(Add.self, .init(a: 3, b: 4)) == 7)
        // master → branch (the master has no `double`: the directory sends it to b1)
        #expect(try await master.call(Double2.self, 21) == 42)
        // branch → branch through the master
        #expect(try await b1.call(Echo.self, "via master") == "via master")
        #expect(try await b2.call(Double2.self, 5) == 10)
        // local first: everybody has `whoami`; each runs its own unless a target is named
        #expect(try await b1.call(WhoAmI.self, "") == "b1 for b1")
        #expect(try await master.call(WhoAmI.self, "") == "master for master")
        #expect(try await b1.call(WhoAmI.self, "!", on: "b2") == "b2 for master!")
        #expect(try await b2.call(WhoAmI.self, "", on: "master") == "master for b2")
        #expect(try await master.call(WhoAmI.self, "", on: "b1") == "b1 for master")
        // errors
        _ = await expectRPCError(.targetOffline) { _ = try await b1.call(Echo.self, "x", on: "b9") }
        _ = await expectRPCError(.noSuchAction) { _ = try await master.call(Echo.self, "x", on: "b1") }
        _ = await expectRPCError(.noSuchAction) { _ = try await b2.callJSON("missing", Data("0".utf8)) }

        #expect(master.directory == ["master": ["add", "whoami"], "b1": ["double", "whoami"], "b2": ["echo", "whoami"]])
        await eventually("b1 learns of b2") { b1.directory["b2"] == ["echo", "whoami"] }
        await b1.close()
        await b2.close()
        await master.close()
    }

    @Test func onlineAndOfflineNoticesReachTheOtherBranches() async throws {
        let address = memoryAddress()
        let master = RPCMaster(options: testOptions(), logger: quiet)
        let masterEvents = EventLog(master.events)
        try await master.listen(address)
        let b1 = RPCBranch(id: "b1", handlers: handlers("b1"), options: testOptions(), logger: quiet)
        let b1Events = EventLog(b1.events)
        try await b1.connect(to: address)
        let b2 = RPCBranch(id: "b2", handlers: handlers("b2") { $0.register(Echo.self) { s, _ in s } }, options: testOptions(), logger: quiet)
        try await b2.connect(to: address)
        #expect(b2.directory["b1"] == ["whoami"], "the welcome carries the directory")
        await eventually("b1 hears b2 come online") { b1Events.contains(.online(branch: "b2", actions: ["echo", "whoami"])) }
        await b2.close()
        await eventually("b1 hears b2 go offline") { b1Events.contains(.offline(branch: "b2")) }
        await eventually("the master reports both") {
            masterEvents.contains(.online(branch: "b2", actions: ["echo", "whoami"])) && masterEvents.contains(.offline(branch: "b2"))
        }
        #expect(b1.directory["b2"] == nil)
        _ = await expectRPCError(.noSuchAction) { _ = try await b1.call(Echo.self, "gone") }
        await b1.close()
        await master.close()
    }

    @Test func aBranchReconnectsAndRegistersAgainAfterTheMasterRestarts() async throws {
        let address = RPCAddress.unix(socketPath())
        let first = RPCMaster(options: testOptions(), logger: quiet)
        try await first.listen(address)
        let branch = RPCBranch(id: "b1", handlers: handlers("b1") { $0.register(Double2.self) { n, _ in 2 * n } }, options: testOptions(), logger: quiet)
        let events = EventLog(branch.events)
        try await branch.connect(to: address)
        #expect(try await first.call(Double2.self, 1) == 2)

        await first.close()
        await eventually("the branch sees the drop") { events.count { if case .disconnected = $0 { true } else { false } } == 1 }
        _ = await expectRPCError(.notConnected) { _ = try await branch.call(Add.self, .init(a: 1, b: 1)) }

        let second = RPCMaster(handlers: handlers("m2") { $0.register(Add.self) { $0.a + $0.b } }, options: testOptions(), logger: quiet)
        try await second.listen(address)
        // Bound on both sides: the master lists it, and the branch has the master's answer to its hello.
        await eventually("the branch binds again") {
            second.directory["b1"] != nil && events.count { if case .connected = $0 { true } else { false } } == 2
        }
        #expect(second.directory["b1"] == ["double", "whoami"], "re-registered with its actions")
        #expect(try await second.call(Double2.self, 4) == 8)
        #expect(try await branch.call(Add.self, .init(a: 1, b: 1)) == 2)
        #expect(events.count { if case .connected = $0 { true } else { false } } == 2)
        await branch.close()
        await second.close()
    }

    @Test func theRightSecretBindsAndAWrongOrMissingOneIsRefusedWith30009() async throws {
        let address = RPCAddress.unix(socketPath())
        let ran = Atomic<Int>(0)
        let master = RPCMaster(
            handlers: handlers("master") { $0.register(Add.self) { input, _ in ran.add(1, ordering: .relaxed); return input.a + input.b } },
            options: testOptions(secret: "s3cret"), logger: quiet)
        try await master.listen(address)

        let good = RPCBranch(id: "good", options: testOptions(secret: "s3cret"), logger: quiet)
        try await good.connect(to: address)
        #expect(try await good.call(Add.self, .init(a: 1, b: 2)) == 3)

        for (id, secret) in [("wrong", "guess"), ("missing", nil)] as [(String, String?)] {
            let branch = RPCBranch(id: id, handlers: handlers(id) { $0.register(Echo.self) { s, _ in s } }, options: testOptions(secret: secret), logger: quiet)
            let error = await expectRPCError(.authenticationFailed) { try await branch.connect(to: address) }
            #expect(error?.message.contains(id) == true, "\(String(describing: error))")
            #expect(!branch.isConnected)
            _ = await expectRPCError(.notConnected) { _ = try await branch.call(Add.self, .init(a: 1, b: 1)) }
            await branch.close()
        }
        #expect(master.directory["wrong"] == nil && master.directory["missing"] == nil)
        #expect(ran.load(ordering: .relaxed) == 1, "nothing ran for the refused branches")

        // A raw client that skips the handshake and sends a request: refused, the handler never runs.
        let raw = try RawSocket(path: { if case .unix(let p) = address { p } else { "" } }())
        var frame = ByteBuffer()
        Frame(kind: .request, id: 1, timeoutMilliseconds: 1000, head: ByteBuffer(string: "add"), body: ByteBuffer(string: #"{"a":1,"b":1}"#)).write(to: &frame)
        raw.send(Array(frame.readableBytesView))
        #expect(await onThread { raw.readUntilClosed() })
        #expect(ran.load(ordering: .relaxed) == 1)
        await good.close()
        await master.close()
    }

    @Test func aConnectionThatDoesNotBindInTimeIsDroppedAndABranchGives30016() async throws {
        var options = testOptions()
        options.handshakeTimeout = .milliseconds(100)
        let path = socketPath()
        let master = RPCMaster(options: options, logger: quiet)
        try await master.listen(.unix(path))
        let raw = try RawSocket(path: path)
        #expect(await onThread { raw.readUntilClosed() }, "a silent client is dropped after the handshake timeout")

        // A "master" that never answers the bind: the branch gives up with 30016.
        let mute = try RawListener(path: socketPath())
        let branch = RPCBranch(id: "b", options: options, logger: quiet)
        _ = await expectRPCError(.bindTimedOut) { try await branch.connect(to: .unix(mute.path)) }
        await branch.close()
        await master.close()
    }

    @Test func aNameOfferedTwiceIsServedByTheFirstBoundAndReported() async throws {
        let address = memoryAddress()
        let lines = LineCollector()
        let master = RPCMaster(options: testOptions(), logger: lines.logger("octopus.rpc"))
        try await master.listen(address)
        let first = RPCBranch(id: "first", handlers: handlers("first"), options: testOptions(), logger: quiet)
        let second = RPCBranch(id: "second", handlers: handlers("second"), options: testOptions(), logger: quiet)
        try await first.connect(to: address)
        try await second.connect(to: address)
        #expect(try await master.call(WhoAmI.self, "") == "first for master")
        #expect(lines.count(#"whoami: branch "first" serves it; branch "second" stands by"#) == 1)
        await first.close()
        await eventually("first is gone") { master.directory["first"] == nil }
        #expect(try await master.call(WhoAmI.self, "") == "second for master", "the stand-by takes over")
        // A second branch with a bound id is refused.
        let twin = RPCBranch(id: "second", options: testOptions(), logger: quiet)
        _ = await expectRPCError(.duplicateBranch) { try await twin.connect(to: address) }
        await twin.close()
        await second.close()
        await master.close()
    }
}
