public import Foundation

/// When and where a task runs: egg-schedule's options, plus overlap, missed-tick, timeout and jitter policies.
///
/// ```swift
/// static let schedule = Schedule(interval: "1m30s", type: .worker, immediate: true)
/// static let schedule = Schedule(cron: "0 0 3 * * *", timeZone: "Europe/Berlin", type: .all, timeout: .seconds(60))
/// ```
///
/// A `Schedule` holds text as written; it is checked when the task is registered with a ``Scheduler`` (or the
/// configuration is read), and a schedule with an error stops the start.
public struct Schedule: Sendable, Hashable {
    /// `"5s"`, `"1m30s"`, or milliseconds as digits.
    public var interval: String?
    /// A cron expression (5 fields, or 6 with seconds first).
    public var cron: String?
    /// The zone of the cron expression (egg's `cronOptions.tz`): `local` (default), `UTC` or an IANA name.
    public var timeZone: String?
    public var type: ScheduleType
    /// Run once when the scheduler starts, besides the ticks.
    public var immediate: Bool
    /// Register the task but never run it from the timer.
    public var disable: Bool
    /// The environments the task runs in; `nil` runs in all.
    public var env: [String]?
    public var overlap: OverlapPolicy
    public var missed: MissedPolicy
    /// A run still going after this is cancelled (a `command` task's process is killed) and logged as timed out.
    public var timeout: Duration?
    /// Each tick is delayed by a random amount up to this, so that many processes do not all fire at once.
    public var jitter: Duration?
    /// A `worker` tick whose worker died while running it is run again by another worker (at-least-once, by
    /// choice). A tick a worker never acknowledged goes to another worker whatever this says: nothing ran.
    public var retry: Bool

    public init(
        interval: String? = nil, cron: String? = nil, timeZone: String? = nil, type: ScheduleType = .worker,
        immediate: Bool = false, disable: Bool = false, env: [String]? = nil, overlap: OverlapPolicy = .skip,
        missed: MissedPolicy = .skip, timeout: Duration? = nil, jitter: Duration? = nil, retry: Bool = false
    ) {
        self.interval = interval
        self.cron = cron
        self.timeZone = timeZone
        self.type = type
        self.immediate = immediate
        self.disable = disable
        self.env = env
        self.overlap = overlap
        self.missed = missed
        self.timeout = timeout
        self.jitter = jitter
        self.retry = retry
    }

    /// How the schedule reads in a status line: `every 30s`, `cron 0 0 * * * * (Europe/Berlin)`, `once at start`.
    public var summary: String {
        var parts: [String] = []
        if let interval { parts.append("every \(interval)") }
        if let cron { parts.append("cron \(cron)" + (timeZone.map { " (\($0))" } ?? "")) }
        if immediate { parts.append(parts.isEmpty ? "once at start" : "and at start") }
        return parts.joined(separator: " ")
    }

    /// Whether the task runs in `environment`.
    public func runs(in environment: String) -> Bool {
        env.map { $0.contains(environment) } ?? true
    }

    /// Checks the schedule; `problems` says each thing wrong, keyed by the option at fault.
    public func problems() -> [(key: String, message: String)] {
        var problems: [(String, String)] = []
        if interval == nil && cron == nil && !immediate {
            problems.append(("interval", "a schedule needs an interval, a cron expression, or immediate: true"))
        }
        if interval != nil && cron != nil {
            problems.append(("cron", "a schedule has an interval or a cron expression, not both"))
        }
        if let interval {
            do { _ = try Interval(parsing: interval) } catch { problems.append(("interval", error.description)) }
        }
        var zone: TimeZone?
        if let timeZone {
            zone = ScheduleZone.parse(timeZone)
            if zone == nil { problems.append(("cronOptions.tz", "unknown time zone \"\(timeZone)\"")) }
            if cron == nil { problems.append(("cronOptions.tz", "a time zone is for a cron expression; there is none")) }
        }
        if let cron {
            do { _ = try CronExpression(cron, timeZone: zone ?? .current) } catch { problems.append(("cron", error.description)) }
        }
        if let timeout, timeout <= .zero { problems.append(("timeout", "the timeout must be more than zero")) }
        if let jitter, jitter < .zero { problems.append(("jitter", "the jitter cannot be negative")) }
        if let env, env.isEmpty { problems.append(("env", "an empty env list would never run; leave env out to run everywhere")) }
        return problems
    }

    /// The checked form the scheduler works with.
    func resolved() throws(ScheduleError) -> ScheduleTrigger {
        if let first = problems().first { throw ScheduleError(task: nil, key: first.key, message: first.message) }
        if let cron {
            let zone = timeZone.flatMap(ScheduleZone.parse) ?? .current
            if let expression = try? CronExpression(cron, timeZone: zone) { return .cron(expression) }
        }
        if let interval, let parsed = try? Interval(parsing: interval) { return .interval(parsed) }
        return .once
    }
}

/// What makes ticks: an interval, a cron expression, or nothing (a task that runs only `immediate`ly).
public enum ScheduleTrigger: Sendable {
    case interval(Interval)
    case cron(CronExpression)
    case once

    /// The fire time after a scheduled one (never computed from "now", so there is no drift).
    public func next(after scheduled: Date) -> Date? {
        switch self {
        case .interval(let interval):
            // On whole milliseconds, so that a million ticks add no rounding drift.
            Date(
                timeIntervalSince1970: Double(Int64((scheduled.timeIntervalSince1970 * 1000).rounded()) + interval.milliseconds)
                    / 1000)
        case .cron(let expression): expression.next(after: scheduled)
        case .once: nil
        }
    }

    /// The zone times are printed in.
    var timeZone: TimeZone {
        if case .cron(let expression) = self { return expression.timeZone }
        return .current
    }
}

/// Which processes run a tick. `worker`: exactly one worker; `all`: every worker. In one process both run it
/// once, here. Other types name a ``Dispatcher`` registered with the scheduler under that name.
public struct ScheduleType: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.name = value }
    public static let worker = ScheduleType("worker")
    public static let all = ScheduleType("all")
    public var description: String { name }
}

/// What happens to a tick while the previous run of the same task is still running.
public enum OverlapPolicy: String, Sendable, Hashable, CaseIterable {
    /// The tick is skipped, and the skip logged (the default).
    case skip
    /// The tick runs beside the previous run.
    case allow
    /// The tick waits for the previous run; at most one waits, later ticks are skipped.
    case queue
}

/// What happens to ticks that came due while they could not fire: the process slept or was stopped, or the
/// clock jumped forward. A tick found more than ``Scheduler/missedThreshold`` late is missed.
public enum MissedPolicy: String, Sendable, Hashable, CaseIterable {
    /// Missed ticks are logged and not run; the task goes on with the next tick (the default).
    case skip
    /// Missed ticks are logged, and the task runs once for all of them.
    case runOnce
}

/// A schedule or task that cannot run, with the task's name and the option at fault.
public struct ScheduleError: Error, Sendable, Hashable, CustomStringConvertible {
    public var task: String?
    public var key: String?
    public var message: String

    public init(task: String?, key: String?, message: String) {
        self.task = task
        self.key = key
        self.message = message
    }

    public var description: String {
        guard let task else { return message }
        return "task \"\(task)\"" + (key.map { " (\($0))" } ?? "") + ": " + message
    }
}

/// Reads a zone name as the scheduler accepts it: `local`, `UTC`/`GMT`/`Z`, or an IANA identifier.
public enum ScheduleZone {
    public static func parse(_ text: String) -> TimeZone? {
        switch text.lowercased() {
        case "local", "": TimeZone.current
        case "utc", "gmt", "z", "etc/utc": TimeZone(identifier: "UTC")
        default: TimeZone(identifier: text)
        }
    }
}
