public import Foundation
public import Logging
public import OctopusConfig

/// A scheduled task written in Swift, as egg-schedule's `Subscription`.
///
/// ```swift
/// struct CleanSessions: Subscription {
///     static let schedule = Schedule(interval: "10m", type: .worker, timeout: .seconds(30))
///     let store: SessionStore
///     func subscribe(_ context: ScheduleContext) async throws {
///         let removed = try await store.removeExpired()
///         context.logger.info("removed \(removed) sessions")
///     }
/// }
/// scheduler.register(CleanSessions(store: store))
/// ```
public protocol Subscription: Sendable {
    static var schedule: Schedule { get }
    /// Runs one tick. A thrown error is logged as the run's failure; cancellation means the run timed out or
    /// the service is stopping.
    func subscribe(_ context: ScheduleContext) async throws
}

/// One firing of a task.
public struct Tick: Sendable, Hashable, Codable {
    /// The task's name.
    public var task: String
    /// The job's number, unique within the scheduler's run (`[Job#ID]` in the schedule log).
    public var jobID: Int
    /// When the tick was due.
    public var scheduledTime: Date
    /// When it was handed out.
    public var actualTime: Date
    /// Why it fires: `timer`, `immediate`, `missed` (once for missed ticks), `manual` (run now).
    public var reason: String

    public init(task: String, jobID: Int, scheduledTime: Date, actualTime: Date, reason: String = "timer") {
        self.task = task
        self.jobID = jobID
        self.scheduledTime = scheduledTime
        self.actualTime = actualTime
        self.reason = reason
    }

    /// How late the tick was handed out, in milliseconds.
    public var latenessMilliseconds: Int {
        max(0, Int((actualTime.timeIntervalSince(scheduledTime) * 1000).rounded()))
    }
}

/// What a task's run gets: its tick, a logger in the task's category, and the service configuration.
public struct ScheduleContext: Sendable {
    public var tick: Tick
    public var logger: Logger
    /// The whole configuration the service was started with (`.null` when none).
    public var configuration: ConfigValue
}

/// A task as the scheduler holds it: a name, a schedule, the work, and the log category of its output.
public struct ScheduledTask: Sendable {
    public var name: String
    public var schedule: Schedule
    /// The category of the task's own lines (`context.logger`, a command's output): `schedule.NAME` unless set.
    public var category: String
    public var body: @Sendable (ScheduleContext) async throws -> Void

    /// A task from a closure, for small jobs.
    public init(
        name: String, schedule: Schedule, category: String? = nil,
        _ body: @escaping @Sendable (ScheduleContext) async throws -> Void
    ) {
        self.name = name
        self.schedule = schedule
        self.category = category ?? "schedule.\(name)"
        self.body = body
    }

    /// A task from a ``Subscription``; its name is the type's name unless given.
    public init<S: Subscription>(_ subscription: S, name: String? = nil, category: String? = nil) {
        self.init(name: name ?? String(describing: S.self), schedule: S.schedule, category: category) { context in
            try await subscription.subscribe(context)
        }
    }
}
