public import Foundation
public import OctopusSchedule

/// What `octopus status` shows: every process of the cluster and every schedule.
public struct ClusterStatus: Sendable, Codable, Hashable {
    /// `starting`, `running` or `stopping`.
    public var state: String
    public var master: ProcessStatus
    /// The agent, then the workers by id (a worker being replaced appears next to its replacement).
    public var processes: [ProcessStatus]
    public var schedules: [ScheduledTaskStatus]
    /// Why the schedules could not be read from the agent, when they could not.
    public var schedulesError: String?
    public var runDirectory: String
    /// Messenger messages dropped because a process's queue was full, since the start.
    public var droppedMessages: Int
    /// The listening sockets the master holds for the workers (`cluster.listen`, with the ports bound).
    public var listening: [String]

    public init(
        state: String, master: ProcessStatus, processes: [ProcessStatus], schedules: [ScheduledTaskStatus],
        schedulesError: String?, runDirectory: String, droppedMessages: Int, listening: [String] = []
    ) {
        self.state = state
        self.master = master
        self.processes = processes
        self.schedules = schedules
        self.schedulesError = schedulesError
        self.runDirectory = runDirectory
        self.droppedMessages = droppedMessages
        self.listening = listening
    }
}

/// One process in ``ClusterStatus``.
public struct ProcessStatus: Sendable, Codable, Hashable {
    public var role: ClusterRole
    public var workerID: Int?
    public var pid: Int32
    /// `starting`, `ready` or `stopping`.
    public var state: String
    public var startedAt: Date
    public var uptimeSeconds: Double
    /// How often the process's slot (the agent, or worker N) was started again after an exit.
    public var restarts: Int
    /// Resident memory in bytes, from /proc.
    public var residentBytes: Int?

    public init(
        role: ClusterRole, workerID: Int?, pid: Int32, state: String, startedAt: Date, uptimeSeconds: Double,
        restarts: Int, residentBytes: Int?
    ) {
        self.role = role
        self.workerID = workerID
        self.pid = pid
        self.state = state
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.restarts = restarts
        self.residentBytes = residentBytes
    }
}
