public import Logging
public import OctopusCluster
public import OctopusLog
public import OctopusSchedule
import Synchronization

/// What a lifecycle hook and a service factory get in the process they run in.
public struct ProcessContext: Sendable {
    /// This process: role, worker id, pid.
    public let identity: ProcessIdentity
    /// The configuration this process runs on (after `configWillLoad`).
    public let configuration: OctopusConfiguration
    /// This process's logging system (already bootstrapped: `Logger(label:)` logs through it).
    public let logging: LogSystem
    /// A logger of category `app` in workers and `agent` in the agent.
    public let logger: Logger
    public let messenger: Messenger
    let child: ClusterChild

    public var role: ClusterRole { identity.role }

    /// Workers: a new descriptor (the caller owns it) of the listening socket the master opened for `port`
    /// (`cluster.listen`), for a server to accept on — `ServerBootstrap(group:).withBoundSocket(fd)` in NIO. Every
    /// worker accepts on the same socket, which outlives any one of them. Nil when there is none (or in the agent).
    public func listeningSocket(port: Int, host: String? = nil) -> Int32? {
        child.listeningSocket(port: port, host: host)
    }

    /// Workers: the addresses of the listening sockets the master handed down.
    public var listeners: [ListenAddress] { child.listeners }
    /// 1…N in workers, stable across restarts; nil in the agent.
    public var workerID: Int? { identity.workerID }
}

/// The schedules of an application: `Subscription`s and closures, registered in every process. The agent times them;
/// a worker makes a subscription (calls its factory) the first time it runs one of its ticks.
public final class ScheduleRegistry: Sendable {
    private let tasks = Mutex<[ScheduledTask]>([])

    /// Registers a ``Subscription`` made by `make` in the process that runs it, named after its type unless `name`
    /// is given.
    ///
    /// ```swift
    /// app.schedules.register { CleanSessions(store: SessionStore()) }
    /// ```
    public func register<S: Subscription>(name: String? = nil, category: String? = nil, _ make: @escaping @Sendable () throws -> S) {
        let made = Mutex<S?>(nil)
        let task = ScheduledTask(name: name ?? String(describing: S.self), schedule: S.schedule, category: category) { context in
            let subscription = try made.withLock { made in
                if let made { return made }
                let new = try make()
                made = new
                return new
            }
            try await subscription.subscribe(context)
        }
        tasks.withLock { $0.append(task) }
    }

    /// Registers a task (a closure with a schedule).
    public func register(_ task: ScheduledTask) {
        tasks.withLock { $0.append(task) }
    }

    /// Every registered task, in registration order.
    public var all: [ScheduledTask] { tasks.withLock { $0 } }
}
