public import Foundation
public import Logging
public import OctopusConfig
public import ServiceLifecycle
import OctopusSystem
import Synchronization

/// The timing authority: keeps every registered task's timer and hands each tick to a ``Dispatcher``.
///
/// Each next fire time is computed from the previous *scheduled* time, never from "now": there is no drift, a
/// wake-up before the fire time waits out the rest (never early), and a late wake-up cannot fire a tick twice.
/// The clock is injected (``ScheduleClock``), so tests move time instead of sleeping.
///
/// ```swift
/// let scheduler = Scheduler(environment: "prod")
/// try scheduler.register(CleanSessions(store: store))
/// try scheduler.register(ScheduledTask(name: "ping", schedule: Schedule(interval: "30s")) { context in
///     context.logger.info("alive")
/// })
/// // run it in a ServiceGroup; graceful shutdown stops the timers and lets running tasks finish
/// ```
///
/// The schedule log (category `schedule`) has one line per event: `[Timer] NAME next at TIME`,
/// `[Job#ID] NAME started (scheduled TIME, late N ms)`, `[Job#ID] NAME finished in N ms` / `failed in N ms: ERROR`
/// / `timed out after N ms` / `skipped: previous run still running`, and `[Timer] NAME missed N tick(s) …`.
public final class Scheduler: Service, Sendable {
    /// A tick found later than this when the scheduler wakes is missed (see ``MissedPolicy``).
    public static let missedThreshold: TimeInterval = 1

    public let environment: String
    public let clock: any ScheduleClock
    public let runner: JobRunner
    let log: Logger
    let defaultDispatcher: any Dispatcher
    let dispatchers: [String: any Dispatcher]
    let shutdownTimeout: Duration

    struct Entry: Sendable {
        var task: ScheduledTask
        var trigger: ScheduleTrigger
    }

    private struct State {
        var tasks: [String: Entry] = [:]
        var order: [String] = []
        var nextJobID = 0
        var running: [String: Int] = [:]
        var waiting: [String: Tick] = [:]
        var jobs: [Int: Task<Void, Never>] = [:]
        var lastOutcome: [String: JobOutcome] = [:]
        var lastFinished: [String: Date] = [:]
        var runs: [String: Int] = [:]
        var failures: [String: Int] = [:]
        var notRun: [String: Int] = [:]
        var nextFire: [String: Date] = [:]
        var inactive: [String: String] = [:]
        var skipsImmediate = false
        var stopping = false
    }

    private let state = Mutex(State())
    private let stopSignal = ResumeOnce<Void>()

    /// - Parameters:
    ///   - environment: tasks whose `env` does not list it are not started.
    ///   - log: the schedule log.
    ///   - makeLogger: makes the logger of a task's category (`context.logger`, a command's output).
    ///   - configuration: handed to every run as `context.configuration`.
    ///   - dispatcher: runs `worker` and `all` ticks; by default here, in this process.
    ///   - dispatchers: dispatchers of custom schedule types, by type name.
    ///   - shutdownTimeout: how long running tasks get to finish at a graceful stop before they are cancelled.
    public init(
        environment: String, clock: any ScheduleClock = SystemScheduleClock.shared,
        log: Logger = Logger(label: "schedule"),
        makeLogger: @escaping @Sendable (String) -> Logger = { Logger(label: $0) },
        configuration: ConfigValue = ConfigValue(.null), dispatcher: (any Dispatcher)? = nil,
        dispatchers: [String: any Dispatcher] = [:], shutdownTimeout: Duration = .seconds(10)
    ) {
        self.environment = environment
        self.clock = clock
        self.log = log
        let runner = JobRunner(clock: clock, log: log, makeLogger: makeLogger, configuration: configuration)
        self.runner = runner
        self.defaultDispatcher = dispatcher ?? LocalDispatcher(runner: runner)
        self.dispatchers = dispatchers
        self.shutdownTimeout = shutdownTimeout
    }

    /// Adds a task. Throws when its name is taken or empty, its schedule has an error, or its type has no
    /// dispatcher: nothing with an error is ever started.
    public func register(_ task: ScheduledTask) throws(ScheduleError) {
        guard !task.name.isEmpty else { throw ScheduleError(task: task.name, key: nil, message: "a task needs a name") }
        let trigger: ScheduleTrigger
        do {
            trigger = try task.schedule.resolved()
        } catch {
            throw ScheduleError(task: task.name, key: error.key, message: error.message)
        }
        let type = task.schedule.type.name
        guard type == ScheduleType.worker.name || type == ScheduleType.all.name || dispatchers[type] != nil else {
            throw ScheduleError(
                task: task.name, key: "type",
                message: "unknown schedule type \"\(type)\"; types are worker, all"
                    + dispatchers.keys.sorted().map { ", \($0)" }.joined())
        }
        let taken = state.withLock { state in
            if state.tasks[task.name] != nil { return true }
            state.tasks[task.name] = Entry(task: task, trigger: trigger)
            state.order.append(task.name)
            return false
        }
        if taken { throw ScheduleError(task: task.name, key: nil, message: "a task of this name is already registered") }
    }

    /// Adds a ``Subscription``, named after its type unless `name` is given.
    public func register<S: Subscription>(_ subscription: S, name: String? = nil) throws(ScheduleError) {
        try register(ScheduledTask(subscription, name: name))
    }

    /// The registered tasks' names, in registration order.
    public var taskNames: [String] { state.withLock { $0.order } }

    /// How each task's last run ended, by name.
    public var lastOutcomes: [String: JobOutcome] { state.withLock { $0.lastOutcome } }

    /// Every registered task's schedule, next fire time and record of runs, in registration order.
    public var status: [ScheduledTaskStatus] {
        state.withLock { state in
            state.order.compactMap { name in
                guard let entry = state.tasks[name] else { return nil }
                let schedule = entry.task.schedule
                return ScheduledTaskStatus(
                    name: name, type: schedule.type.name, schedule: schedule.summary,
                    state: state.inactive[name] ?? "active", nextFire: state.nextFire[name],
                    lastOutcome: state.lastOutcome[name], lastFinished: state.lastFinished[name],
                    runs: state.runs[name, default: 0], failures: state.failures[name, default: 0],
                    running: state.running[name, default: 0], notRun: state.notRun[name, default: 0])
            }
        }
    }

    /// Runs the timers until graceful shutdown, cancellation or ``stop()``; then stops the timers, lets running
    /// tasks finish for up to `shutdownTimeout`, cancels what is left, and returns.
    public func run() async throws {
        let entries = state.withLock { state in state.order.compactMap { state.tasks[$0] } }
        var active: [Entry] = []
        for entry in entries {
            let schedule = entry.task.schedule
            if schedule.disable {
                log.info("[Timer] \(entry.task.name) is disabled")
                state.withLock { $0.inactive[entry.task.name] = "disabled" }
            } else if !schedule.runs(in: environment) {
                state.withLock { $0.inactive[entry.task.name] = "not in env \"\(environment)\"" }
                log.info(
                    "[Timer] \(entry.task.name) does not run in env \"\(environment)\" (env: \((schedule.env ?? []).joined(separator: ", ")))")
            } else {
                active.append(entry)
            }
        }
        let stopSignal = self.stopSignal
        var cancelled = false
        await withTaskGroup(of: Void.self) { group in
            for entry in active {
                group.addTask(executorPreference: dispatcher(for: entry).taskExecutor) { await self.timerLoop(entry) }
            }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await stopSignal.value
                } onGracefulShutdown: {
                    stopSignal.resume(())
                }
            } onCancel: {
                stopSignal.resume(())
            }
            cancelled = Task.isCancelled
            group.cancelAll()
        }
        await drain(cancelAtOnce: cancelled)
    }

    /// Makes ``run()`` skip the `immediate` ticks: a process model whose timer process restarted runs them once per
    /// service start, not once per timer process. Call before `run()`.
    public func skipImmediateTicks() {
        state.withLock { $0.skipsImmediate = true }
    }

    /// Stops a running scheduler as a graceful shutdown does.
    public func stop() {
        stopSignal.resume(())
    }

    /// Runs the task named `name` once, now, whatever its schedule, and returns how it ended.
    public func runNow(_ name: String) async throws(ScheduleError) -> JobOutcome {
        try await runNowWithTick(name).outcome
    }

    /// ``runNow(_:)``, with the tick it ran (a dispatcher can say more about it by its job id).
    public func runNowWithTick(_ name: String) async throws(ScheduleError) -> (tick: Tick, outcome: JobOutcome) {
        let now = clock.now()
        let found: (Entry, Tick)? = state.withLock { state in
            guard let entry = state.tasks[name] else { return nil }
            state.nextJobID += 1
            state.running[name, default: 0] += 1
            return (entry, Tick(task: name, jobID: state.nextJobID, scheduledTime: now, actualTime: now, reason: "manual"))
        }
        guard let (entry, tick) = found else {
            let names = taskNames
            throw ScheduleError(
                task: name, key: nil,
                message: "no such task; tasks are \(names.isEmpty ? "(none)" : names.joined(separator: ", "))")
        }
        let outcome = await dispatcher(for: entry).dispatch(tick, of: entry.task)
        finished(entry, tick, outcome)
        return (tick, outcome)
    }

    private func dispatcher(for entry: Entry) -> any Dispatcher {
        dispatchers[entry.task.schedule.type.name] ?? defaultDispatcher
    }

    private func format(_ date: Date, _ entry: Entry) -> String {
        ISOTime.format(date, in: entry.trigger.timeZone, fractional: true)
    }

    private func timerLoop(_ entry: Entry) async {
        let name = entry.task.name
        var previous = clock.now()
        if entry.task.schedule.immediate, !state.withLock({ $0.skipsImmediate }) {
            fire(entry, scheduled: previous, reason: "immediate")
        }
        while !Task.isCancelled {
            guard let next = entry.trigger.next(after: previous) else {
                if case .once = entry.trigger {} else { log.info("[Timer] \(name) has no further fire time") }
                state.withLock { _ = $0.nextFire.removeValue(forKey: name) }
                return
            }
            state.withLock { $0.nextFire[name] = next }
            log.info("[Timer] \(name) next at \(format(next, entry))")
            var delay = 0.0
            if let jitter = entry.task.schedule.jitter {
                let (seconds, attoseconds) = jitter.components
                delay = Double.random(in: 0...(Double(seconds) + Double(attoseconds) / 1e18))
            }
            let wakeAt = next.addingTimeInterval(delay)
            do {
                while clock.now() < wakeAt { try await clock.sleep(until: wakeAt) }
            } catch {
                return
            }
            let now = clock.now()
            // The latest tick that is due; every due tick before it was missed.
            var latest = next
            var missed = 0
            switch entry.trigger {
            case .interval(let interval):
                let behind = Int64((now.timeIntervalSince(next) * 1000).rounded(.down))
                missed = Int(max(0, behind / interval.milliseconds))
                latest = Date(
                    timeIntervalSince1970: Double(
                        Int64((next.timeIntervalSince1970 * 1000).rounded()) + Int64(missed) * interval.milliseconds) / 1000)
            case .cron(let expression):
                while let after = expression.next(after: latest), after <= now {
                    latest = after
                    missed += 1
                    if missed == 10_000, let last = expression.previous(before: now.addingTimeInterval(0.001)) {
                        latest = last
                        break
                    }
                }
            case .once:
                break
            }
            let lateness = now.timeIntervalSince(latest) - (missed == 0 ? delay : 0)
            let onTime = lateness <= Self.missedThreshold
            let count = missed + (onTime ? 0 : 1)
            if count > 0 {
                let what: String
                if onTime {
                    what = "running the latest"
                } else if entry.task.schedule.missed == .runOnce {
                    what = "running once for them"
                } else {
                    what = "skipped"
                }
                log.warning(
                    "[Timer] \(name) missed \(count == 10_000 ? "10000 or more" : String(count)) tick(s) since \(format(next, entry)) (the process slept or stopped, or the clock jumped); \(what)")
            }
            if onTime {
                fire(entry, scheduled: latest, reason: "timer")
            } else if entry.task.schedule.missed == .runOnce {
                fire(entry, scheduled: latest, reason: "missed")
            }
            previous = latest
            // The tick's dispatch goes first; the next fire time is worked out and logged after it (on a serial
            // executor, such as a dispatcher's event loop, it would otherwise wait for this bookkeeping).
            await Task.yield()
        }
    }

    private enum Decision {
        case run(Tick)
        case skip(Tick, waiting: Bool)
        case queued(Tick)
        case stopping
    }

    private func fire(_ entry: Entry, scheduled: Date, reason: String) {
        let name = entry.task.name
        let now = clock.now()
        let decision: Decision = state.withLock { state in
            if state.stopping { return .stopping }
            state.nextJobID += 1
            let tick = Tick(task: name, jobID: state.nextJobID, scheduledTime: scheduled, actualTime: now, reason: reason)
            if state.running[name, default: 0] > 0 {
                switch entry.task.schedule.overlap {
                case .skip:
                    return .skip(tick, waiting: false)
                case .queue:
                    if state.waiting[name] != nil { return .skip(tick, waiting: true) }
                    state.waiting[name] = tick
                    return .queued(tick)
                case .allow:
                    break
                }
            }
            state.running[name, default: 0] += 1
            startLocked(&state, entry, tick)
            return .run(tick)
        }
        switch decision {
        case .run, .stopping:
            break
        case .skip(let tick, let waiting):
            log.warning(
                "[Job#\(tick.jobID)] \(name) skipped: previous run still running\(waiting ? " and another is waiting" : "")")
        case .queued(let tick):
            log.info("[Job#\(tick.jobID)] \(name) queued: previous run still running")
        }
    }

    /// Starts a job; called with the state locked, so the job is known before it can finish.
    private func startLocked(_ state: inout State, _ entry: Entry, _ tick: Tick) {
        let dispatcher = dispatcher(for: entry)
        state.jobs[tick.jobID] = Task(executorPreference: dispatcher.taskExecutor) {
            let outcome = await dispatcher.dispatch(tick, of: entry.task)
            self.finished(entry, tick, outcome)
        }
    }

    private func finished(_ entry: Entry, _ tick: Tick, _ outcome: JobOutcome) {
        let name = entry.task.name
        let now = clock.now()
        state.withLock { state in
            state.jobs[tick.jobID] = nil
            state.lastOutcome[name] = outcome
            state.lastFinished[name] = now
            if case .notRun = outcome {
                state.notRun[name, default: 0] += 1
            } else {
                state.runs[name, default: 0] += 1
                if !outcome.succeeded { state.failures[name, default: 0] += 1 }
            }
            state.running[name, default: 1] -= 1
            if var waiting = state.waiting.removeValue(forKey: name), !state.stopping {
                waiting.actualTime = now
                state.running[name, default: 0] += 1
                startLocked(&state, entry, waiting)
            }
        }
    }

    /// Waits for running jobs (up to `shutdownTimeout`), then cancels what is left and waits for it to end.
    private func drain(cancelAtOnce: Bool) async {
        let jobs = state.withLock { state in
            state.stopping = true
            state.waiting.removeAll()
            return Array(state.jobs.values)
        }
        await Self.finish(jobs, within: shutdownTimeout, cancelAtOnce: cancelAtOnce, log: log, prefix: "[Timer]")
    }

    /// Lets running jobs finish for up to `timeout` (logged), then cancels what is left and waits for it to end.
    static func finish(
        _ jobs: [Task<Void, Never>], within timeout: Duration, cancelAtOnce: Bool, log: Logger, prefix: String
    ) async {
        guard !jobs.isEmpty else { return }
        log.info("\(prefix) stopping: waiting for \(jobs.count) running job(s)")
        if !cancelAtOnce {
            let allDone = ResumeOnce<Bool>()
            let waiter = Task {
                for job in jobs { await job.value }
                allDone.resume(true)
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                allDone.resume(false)
            }
            let done = await allDone.value
            timer.cancel()
            waiter.cancel()
            if done { return }
            log.warning("\(prefix) stopping: \(jobs.count) job(s) still running after \(timeout); cancelling them")
        }
        for job in jobs { job.cancel() }
        for job in jobs { await job.value }
    }
}

/// One task as ``Scheduler/status`` reports it (and `octopus status` shows it).
public struct ScheduledTaskStatus: Sendable, Codable, Hashable {
    public var name: String
    /// `worker`, `all`, or a custom type.
    public var type: String
    /// `every 30s`, `cron 0 0 * * * * (Europe/Berlin)`, `once at start`.
    public var schedule: String
    /// `active`, `disabled`, or why the task does not run here (`not in env "local"`).
    public var state: String
    public var nextFire: Date?
    public var lastOutcome: JobOutcome?
    public var lastFinished: Date?
    public var runs: Int
    public var failures: Int
    /// Runs going on now.
    public var running: Int
    /// Ticks that ran nowhere (no process could take them).
    public var notRun: Int
    /// Who ran the last tick (a process model fills this in: `worker 2 (pid 4242)`).
    public var lastRunBy: String?

    public init(
        name: String, type: String, schedule: String, state: String, nextFire: Date?, lastOutcome: JobOutcome?,
        lastFinished: Date?, runs: Int, failures: Int, running: Int, notRun: Int = 0, lastRunBy: String? = nil
    ) {
        self.name = name
        self.type = type
        self.schedule = schedule
        self.state = state
        self.nextFire = nextFire
        self.lastOutcome = lastOutcome
        self.lastFinished = lastFinished
        self.runs = runs
        self.failures = failures
        self.running = running
        self.notRun = notRun
        self.lastRunBy = lastRunBy
    }
}
