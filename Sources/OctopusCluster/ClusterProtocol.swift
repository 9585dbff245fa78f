import Foundation
import NIOCore
import OctopusRPC
public import OctopusSchedule

// What the master and its children say to each other over the private channels, on the RPC core's frames. Calls
// are typed actions; one-way messages have names under `octopus.`.

/// Child → master: the child has started everything it runs and is ready for work.
struct ChildReady: RPCAction {
    typealias Input = Int32
    typealias Output = Bool
    static let name = "octopus.cluster.ready"
}

/// Child → master: the child is stopping on its own (SIGTERM to it, or a fatal error); answered once recorded, so
/// that its exit is not taken for a crash.
struct ChildStopping: RPCAction {
    typealias Input = String
    typealias Output = Bool
    static let name = "octopus.cluster.stopping"
}

/// Child → master: a command task's process group, recorded before its program runs so that the master ends it
/// should the child be killed.
struct RegisterGroup: RPCAction {
    typealias Input = Int32
    typealias Output = Bool
    static let name = "octopus.cluster.group"
}

/// Child → master: every live process of the cluster now (later changes come as `members` messages).
struct MembersQuery: RPCAction {
    typealias Input = Int
    typealias Output = Membership
    static let name = "octopus.cluster.members"
}

/// Master → agent: the state of every schedule.
struct ScheduleStatusQuery: RPCAction {
    typealias Input = Int
    typealias Output = [ScheduledTaskStatus]
    static let name = "octopus.schedule.status"
}

/// Agent → a worker (through the master): take this tick. The worker answers before the run begins.
struct StartTick: RPCAction {
    typealias Input = TickOrder
    typealias Output = TickAnswer
    static let name = "octopus.schedule.start"
}

/// Worker → the agent (through the master): how a tick's run ended.
struct TickFinished: RPCAction {
    typealias Input = TickReport
    typealias Output = Bool
    static let name = "octopus.schedule.finished"
}

/// Worker → a new agent: a tick the previous agent handed out is still running here.
struct AdoptTick: RPCAction {
    typealias Input = TickOrder
    typealias Output = Bool
    static let name = "octopus.schedule.adopt"
}

/// Master → agent: run a task now, as its type says (`octopus run` while the service runs).
struct ScheduleRunNow: RPCAction {
    typealias Input = String
    typealias Output = RunNowResult
    static let name = "octopus.schedule.runNow"
}

/// Control socket: run a task now through the agent.
struct ControlRun: RPCAction {
    typealias Input = String
    typealias Output = RunNowResult
    static let name = "octopus.control.run"
}

/// A tick handed to a worker: a key unique in the service (the agent's pid, the job id, the worker's pid) and the
/// tick.
struct TickOrder: Codable, Sendable {
    var key: String
    var tick: Tick
    var agent: Int32
}

enum TickAnswer: Codable, Sendable {
    /// Taken: the run begins once this answer has left the worker.
    case started
    /// Not taken; nothing runs.
    case refused(String)
}

struct TickReport: Codable, Sendable {
    var order: TickOrder
    var worker: ProcessIdentity
    var outcome: JobOutcome
}

/// What `octopus run NAME` gets from a running service: the outcome, and each worker's.
public struct RunNowResult: Codable, Sendable {
    /// The tick's outcome as the scheduler records it (for `all`: the first failure, else the longest run).
    public var outcome: JobOutcome
    /// Each worker's outcome (one for `worker`, every ready worker's for `all`).
    public var runs: [WorkerRun]
    /// Set when there is no such task (then nothing ran).
    public var error: String?
}

/// One worker's run of a tick.
public struct WorkerRun: Codable, Sendable {
    public var worker: ProcessIdentity
    public var outcome: JobOutcome
}

/// Agent → master: the agent rolled this file (a configured file name); answers once every other process has reopened
/// it (or is gone, or the deadline passed), so that the rolled file can be archived.
struct RollBarrier: RPCAction {
    typealias Input = String
    typealias Output = Bool
    static let name = "octopus.log.barrier"
}

/// Master → child: reopen the file appenders writing this file; answers once they write to the path anew.
struct ReopenFile: RPCAction {
    typealias Input = String
    typealias Output = Bool
    static let name = "octopus.log.reopen"
}

/// Control socket: the whole cluster's state.
struct ControlStatus: RPCAction {
    typealias Input = Int
    typealias Output = ClusterStatus
    static let name = "octopus.control.status"
}

/// Control socket: a graceful stop; answers at once with the master's pid.
struct ControlStop: RPCAction {
    typealias Input = Int
    typealias Output = Int32
    static let name = "octopus.control.stop"
}

/// One-way message names.
enum ClusterMessage {
    /// child → master: a registered process group has ended; body: the pgid.
    static let groupEnded = "octopus.cluster.groupEnded"
    /// master → child: every process is ready (serverDidReady; the agent starts its timers).
    static let clusterReady = "octopus.cluster.clusterReady"
    /// master → child: reopen every log file (SIGHUP to the master).
    static let reopen = "octopus.cluster.reopen"
    /// follower → master → agent: a file has grown past its maxLogSize; roll it (body: the file name).
    static let rollRequest = "octopus.log.rollRequest"
    /// master → child: every live process, whenever that changes (a `Membership`, JSON).
    static let members = "octopus.cluster.members"
    /// master → child: a messenger message (an envelope).
    static let deliver = "octopus.messenger.deliver"
    /// child → master: a messenger message to route (an envelope).
    static let send = "octopus.messenger.send"
}

/// Where a messenger message goes (egg's routing forms).
public enum MessengerRoute: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The agent and every worker (the sender too).
    case broadcast
    /// Every worker.
    case app
    /// The agent.
    case agent
    /// One worker, chosen at random among the ready ones.
    case random
    /// The process with this pid.
    case pid(Int32)
    /// The worker with this id (for calls).
    case worker(Int)

    public var description: String {
        switch self {
        case .broadcast: "broadcast"
        case .app: "every worker"
        case .agent: "the agent"
        case .random: "a random worker"
        case .pid(let pid): "pid \(pid)"
        case .worker(let id): "worker \(id)"
        }
    }
}

/// A messenger message on the wire: a small binary header the master routes by (version 1; route tag and value; the
/// sender's role, worker id and pid; the action's name), then the payload's bytes as they are.
///
/// | bytes | field |
/// |---|---|
/// | 1 | version (1) |
/// | 1 + 4 | route: 0 broadcast, 1 app, 2 agent, 3 random, 4 pid, 5 worker; then the pid or worker id (Int32) |
/// | 1 + 4 + 4 | sender: role (0 master, 1 agent, 2 worker), worker id (−1 none), pid |
/// | 2 + n | the action's name, UTF-8 |
struct MessageEnvelope: Sendable {
    struct Header: Sendable {
        var action: String
        var route: MessengerRoute
        var from: ProcessIdentity
    }

    var header: Header
    var payload: ByteBuffer

    init(action: String, route: MessengerRoute, from: ProcessIdentity, payload: ByteBuffer) {
        self.header = Header(action: action, route: route, from: from)
        self.payload = payload
    }

    private static let roles: [ClusterRole] = [.master, .agent, .worker]

    func encoded() throws(RPCError) -> ByteBuffer {
        let name = header.action.utf8
        guard name.count <= Int(UInt16.max) else { throw RPCError(.malformed, "the action's name is too long", action: header.action) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(17 + name.count + payload.readableBytes)
        buffer.writeInteger(UInt8(1))
        let (tag, value): (UInt8, Int32) =
            switch header.route {
            case .broadcast: (0, 0)
            case .app: (1, 0)
            case .agent: (2, 0)
            case .random: (3, 0)
            case .pid(let pid): (4, pid)
            case .worker(let id): (5, Int32(truncatingIfNeeded: id))
            }
        buffer.writeInteger(tag)
        buffer.writeInteger(value)
        buffer.writeInteger(UInt8(Self.roles.firstIndex(of: header.from.role) ?? 0))
        buffer.writeInteger(Int32(truncatingIfNeeded: header.from.workerID ?? -1))
        buffer.writeInteger(header.from.pid)
        buffer.writeInteger(UInt16(name.count))
        buffer.writeString(header.action)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// The header alone (the master routes by it and forwards the bytes as they are).
    static func header(of buffer: ByteBuffer) -> Header? {
        var buffer = buffer
        return readHeader(&buffer)
    }

    /// Nil when the bytes are not an envelope.
    init?(decoding buffer: ByteBuffer) {
        var buffer = buffer
        guard let header = Self.readHeader(&buffer) else { return nil }
        self.header = header
        self.payload = buffer
    }

    private static func readHeader(_ buffer: inout ByteBuffer) -> Header? {
        guard buffer.readInteger(as: UInt8.self) == 1, let tag = buffer.readInteger(as: UInt8.self),
            let value = buffer.readInteger(as: Int32.self), let role = buffer.readInteger(as: UInt8.self),
            Int(role) < roles.count, let workerID = buffer.readInteger(as: Int32.self),
            let pid = buffer.readInteger(as: Int32.self), let length = buffer.readInteger(as: UInt16.self),
            let action = buffer.readString(length: Int(length))
        else { return nil }
        let route: MessengerRoute
        switch tag {
        case 0: route = .broadcast
        case 1: route = .app
        case 2: route = .agent
        case 3: route = .random
        case 4: route = .pid(value)
        case 5: route = .worker(Int(value))
        default: return nil
        }
        let from = ProcessIdentity(role: roles[Int(role)], workerID: workerID < 0 ? nil : Int(workerID), pid: pid)
        return Header(action: action, route: route, from: from)
    }
}
