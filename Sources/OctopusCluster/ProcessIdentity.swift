import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a process of a cluster does: the master supervises, the agent holds the timers (and long connections), the
/// workers serve.
public enum ClusterRole: String, Sendable, Codable, Hashable, CaseIterable {
    case master
    case agent
    case worker
}

/// Which process of the cluster: its role, its worker id (1…N, stable: a replacement takes over its predecessor's)
/// and its pid.
public struct ProcessIdentity: Sendable, Codable, Hashable, CustomStringConvertible {
    public var role: ClusterRole
    /// 1…N for workers; nil for the master and the agent.
    public var workerID: Int?
    public var pid: Int32

    public init(role: ClusterRole, workerID: Int? = nil, pid: Int32) {
        self.role = role
        self.workerID = workerID
        self.pid = pid
    }

    /// `worker 2 (pid 4242)`, `agent (pid 4241)`.
    public var description: String {
        "\(name) (pid \(pid))"
    }

    /// `worker 2`, `agent`, `master`.
    public var name: String {
        switch role {
        case .worker: "worker \(workerID ?? 0)"
        case .agent, .master: role.rawValue
        }
    }

    /// The id the process binds to the master's RPC endpoint with (unique while it lives, even next to its own
    /// replacement).
    var branchID: String {
        switch role {
        case .master: "master"
        case .agent: "agent.\(pid)"
        case .worker: "worker-\(workerID ?? 0).\(pid)"
        }
    }

    /// The identity a branch id names, if it is one of a cluster's.
    init?(branchID: String) {
        if branchID == "master" {
            self.init(role: .master, pid: 0)
            return
        }
        guard let dot = branchID.lastIndex(of: "."), let pid = Int32(branchID[branchID.index(after: dot)...]) else {
            return nil
        }
        let head = branchID[..<dot]
        if head == "agent" {
            self.init(role: .agent, pid: pid)
        } else if head.hasPrefix("worker-"), let id = Int(head.dropFirst("worker-".count)) {
            self.init(role: .worker, workerID: id, pid: pid)
        } else {
            return nil
        }
    }
}

/// How a child learns what it is: the environment (role, worker id, the master's pid) and an inherited descriptor
/// (the private channel, descriptor 3). The secret comes through the channel itself, never the environment or the
/// command line.
enum ChildEnvironment {
    static let role = "OCTOPUS_ROLE"
    static let workerID = "OCTOPUS_WORKER_ID"
    static let masterPID = "OCTOPUS_MASTER_PID"
    /// The descriptor of the private channel in a child.
    static let channelDescriptor: Int32 = 3
    /// Workers: the listening sockets the master handed down, `FD=HOST:PORT` separated by commas.
    static let listen = "OCTOPUS_LISTEN"
    /// Set by `start --daemon` for the daemonised master: the descriptor to report readiness on.
    static let daemonNotify = "OCTOPUS_DAEMON_NOTIFY_FD"

    /// What the environment says this process is, if it was started as a cluster child.
    static func child() -> (role: ClusterRole, workerID: Int?, masterPID: Int32)? {
        let environment = ProcessInfo.processInfo.environment
        guard let raw = environment[role], let role = ClusterRole(rawValue: raw), role != .master,
            let master = environment[masterPID].flatMap(Int32.init)
        else { return nil }
        let worker = environment[workerID].flatMap(Int.init)
        return (role, role == .worker ? worker : nil, master)
    }

    /// Removes what only this process may read, so that programs it starts (command tasks, shells) do not take
    /// themselves for cluster children. `OCTOPUS_WORKER_ID` stays, as `NODE_APP_INSTANCE` does under pm2.
    static func clear() {
        unsetenv(role)
        unsetenv(masterPID)
        unsetenv(listen)
        unsetenv(daemonNotify)
    }

    /// The first line a master writes on a child's channel, before any frame: the version and the secret (hex).
    static let preambleTag = "octopus-channel 1 "
}
