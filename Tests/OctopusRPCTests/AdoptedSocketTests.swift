import CShims
import Foundation
import NIOCore
import Synchronization
import Testing
import TestSupport

@testable import OctopusRPC

#if canImport(Glibc)
import Glibc
#endif

/// Collects one-way messages as they arrive.
final class MessageBox: Sendable {
    private let received = Mutex<[(name: String, sender: String?, text: String)]>([])
    var all: [(name: String, sender: String?, text: String)] { received.withLock { $0 } }

    func receiver(_ handlers: RPCHandlers, _ name: String) {
        handlers.onMessage(name) { body, context in
            self.received.withLock { $0.append((context.name, context.sender, String(buffer: body))) }
        }
    }
}

/// The private channel of the process model: a socketpair whose ends the master and a branch adopt.
@Suite struct AdoptedSocketTests {
    func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        #expect(octopus_socketpair_cloexec(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test func aBranchBindsOverAnAdoptedSocketPairWithTheSecretAndCallsBothWays() async throws {
        let (masterEnd, branchEnd) = socketPair()
        let masterHandlers = RPCHandlers()
        masterHandlers.register(Add.self) { $0.a + $0.b }
        let master = RPCMaster(handlers: masterHandlers, options: testOptions(secret: "s"), logger: quiet)
        try await master.adopt(descriptor: masterEnd, branch: "worker-1")
        let branchHandlers = RPCHandlers()
        branchHandlers.register(Echo.self) { "echo \($0)" }
        let branch = RPCBranch(id: "worker-1", handlers: branchHandlers, options: testOptions(secret: "s"), logger: quiet)
        try await branch.connect(descriptor: branchEnd)
        #expect(try await branch.call(Add.self, .init(a: 2, b: 3)) == 5)
        #expect(try await master.call(Echo.self, "hi", on: "worker-1") == "echo hi")
        await branch.close()
        await master.close()
    }

    @Test func anAdoptedSocketReservedForOneBranchRefusesAnother() async throws {
        let (masterEnd, branchEnd) = socketPair()
        let master = RPCMaster(options: testOptions(secret: "s"), logger: quiet)
        try await master.adopt(descriptor: masterEnd, branch: "worker-1")
        let impostor = RPCBranch(id: "worker-2", options: testOptions(secret: "s"), logger: quiet)
        let error = await expectRPCError(.authenticationFailed) { try await impostor.connect(descriptor: branchEnd) }
        #expect(error?.message.contains(#"this connection is for branch "worker-1""#) == true)
        #expect(master.directory["worker-2"] == nil)
        await impostor.close()
        await master.close()
    }

    @Test func oneWayMessagesArriveInOrderBothWaysAndAnUnboundTargetIsAnError() async throws {
        let (masterEnd, branchEnd) = socketPair()
        let masterHandlers = RPCHandlers()
        let atMaster = MessageBox()
        atMaster.receiver(masterHandlers, "note")
        let master = RPCMaster(handlers: masterHandlers, options: testOptions(), logger: quiet)
        try await master.adopt(descriptor: masterEnd)
        let branchHandlers = RPCHandlers()
        let atBranch = MessageBox()
        atBranch.receiver(branchHandlers, "note")
        let branch = RPCBranch(id: "b", handlers: branchHandlers, options: testOptions(), logger: quiet)
        try await branch.connect(descriptor: branchEnd)

        for i in 0..<500 {
            try branch.send("note", body: ByteBuffer(string: "up \(i)"))
            try master.send("note", body: ByteBuffer(string: "down \(i)"), to: "b")
        }
        try branch.send("unknown", body: ByteBuffer(string: "nobody listens"))  // dropped with a debug line
        await eventually("every message") { atMaster.all.count == 500 && atBranch.all.count == 500 }
        #expect(atMaster.all.map(\.text) == (0..<500).map { "up \($0)" })
        #expect(atBranch.all.map(\.text) == (0..<500).map { "down \($0)" })
        #expect(atMaster.all.allSatisfy { $0.sender == "b" && $0.name == "note" })
        #expect(atBranch.all.allSatisfy { $0.sender == "master" })
        await expectRPCError(.targetOffline) { try master.send("note", body: ByteBuffer(), to: "nobody") }
        await branch.close()
        await master.close()
    }

    @Test func whenTheOtherEndClosesTheBranchSaysSoAndDoesNotReconnect() async throws {
        let (masterEnd, branchEnd) = socketPair()
        let master = RPCMaster(options: testOptions(), logger: quiet)
        try await master.adopt(descriptor: masterEnd)
        let branch = RPCBranch(id: "b", options: testOptions(), logger: quiet)
        let events = EventLog(branch.events)
        try await branch.connect(descriptor: branchEnd)
        #expect(branch.isConnected)
        await master.close()
        await eventually("disconnected") { events.count { if case .disconnected = $0 { true } else { false } } == 1 }
        #expect(!branch.isConnected)
        await expectRPCError(.notConnected) { try branch.send("x", body: ByteBuffer()) }
        await expectRPCError(.notConnected) { _ = try await branch.call(Add.self, .init(a: 1, b: 1)) }
        await branch.close()
    }
}
