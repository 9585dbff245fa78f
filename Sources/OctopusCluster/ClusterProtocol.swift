import Foundation
import NIOCore
import OctopusRPC
import OctopusSchedule

// What the master and its children say to each other over the private channels, on the RPC core's frames. Calls
// are typed actions; one-way messages have names under `octopus.`.

/// Child → master: the child has started everything it runs and is ready for work.
struct ChildReady: RPCAction {
    typealias Input = Int32
    typealias Output = Bool
    static let name = "octopus.cluster.ready"
}

/// Child → master: a command task's process group, recorded before its program runs so that the master ends it
/// should the child be killed.
struct RegisterGroup: RPCAction {
    typealias Input = Int32
    typealias Output = Bool
    static let name = "octopus.cluster.group"
}

/// Master → agent: the state of every schedule.
struct ScheduleStatusQuery: RPCAction {
    typealias Input = Int
    typealias Output = [ScheduledTaskStatus]
    static let name = "octopus.schedule.status"
}

/// Agent → a worker (through the master): run this tick of a task here.
struct RunTick: RPCAction {
    typealias Input = Tick
    typealias Output = JobOutcome
    static let name = "octopus.schedule.run"
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
    /// child → master: the child is stopping on its own (SIGTERM to it, or a fatal error); body: the reason.
    static let stopping = "octopus.cluster.stopping"
    /// child → master: a registered process group has ended; body: the pgid.
    static let groupEnded = "octopus.cluster.groupEnded"
    /// master → child: every process is ready (serverDidReady; the agent starts its timers).
    static let clusterReady = "octopus.cluster.clusterReady"
    /// master → child: reopen every log file (SIGHUP to the master).
    static let reopen = "octopus.cluster.reopen"
    /// master → agent: the workers that are ready now (JSON list of identities).
    static let workers = "octopus.cluster.workers"
    /// master → child: a messenger message (an envelope).
    static let deliver = "octopus.messenger.deliver"
    /// child → master, as a call: route a messenger message (an envelope); answers the number of recipients.
    static let send = "octopus.messenger.send"
    /// child → master, as a call: a messenger call to one process (an envelope whose payload is the call's body).
    static let call = "octopus.messenger.call"
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

/// A messenger message on the wire: a length-prefixed JSON header (action, route, sender), then the payload's bytes
/// as they are (no second encoding of the payload).
struct MessageEnvelope: Sendable {
    struct Header: Codable, Sendable {
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

    func encoded() throws -> ByteBuffer {
        let head = try JSONEncoder().encode(header)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(4 + head.count + payload.readableBytes)
        buffer.writeInteger(UInt32(head.count))
        buffer.writeBytes(head)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// Nil when the bytes are not an envelope.
    init?(decoding buffer: ByteBuffer) {
        var buffer = buffer
        guard let length = buffer.readInteger(as: UInt32.self), Int(length) <= buffer.readableBytes,
            let head = buffer.readBytes(length: Int(length)),
            let header = try? JSONDecoder().decode(Header.self, from: Data(head))
        else { return nil }
        self.header = header
        self.payload = buffer
    }
}
