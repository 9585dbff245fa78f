import Logging
import OctopusSystem
public import ServiceLifecycle
import Synchronization

/// Runs ticks that another process times (a worker of a cluster, whose agent holds the timers), each through a
/// ``JobRunner``. As a `Service` it keeps the running ones in view: at a graceful stop it takes no new tick (they are
/// refused), lets the running ones finish for up to `shutdownTimeout`, then cancels what is left.
public final class TickRunner: Service, Sendable {
    /// What ``admit(_:report:)`` answers.
    public enum Admission: Sendable {
        /// Taken: the run begins when `start` is called, and its outcome goes to the report.
        case accepted(start: @Sendable () -> Void)
        /// Not taken (stopping, or no such task here): nothing runs.
        case refused(String)
    }

    public let runner: JobRunner
    let tasks: [String: ScheduledTask]
    let shutdownTimeout: Duration
    /// Who runs the ticks, in refusals (`worker 2`).
    let name: String

    private struct State {
        var nextID = 0
        var jobs: [Int: Task<Void, Never>] = [:]
        /// Admitted runs whose `start` has not been called yet (a stop waits for them to start).
        var unstarted = 0
        var stopping = false
        /// Resumed when the last unstarted run starts, once a stop waits for that.
        var allStarted: ResumeOnce<Void>?
    }

    private let state = Mutex(State())

    public init(runner: JobRunner, tasks: [ScheduledTask], shutdownTimeout: Duration, name: String) {
        self.runner = runner
        self.tasks = Dictionary(tasks.map { ($0.name, $0) }) { first, _ in first }
        self.shutdownTimeout = shutdownTimeout
        self.name = name
    }

    /// Takes a tick without starting it: a process model acknowledges the tick first and starts the run only once
    /// its acknowledgement has left, so that a process that dies before acknowledging has run nothing. The run counts
    /// as running (a graceful stop waits for it) from now; `report` is awaited before it ends. `start` must be called
    /// once; its run's task is made then (made now, it would wake a thread of the pool only to wait).
    public func admit(_ tick: Tick, report: @escaping @Sendable (JobOutcome) async -> Void) -> Admission {
        guard let task = tasks[tick.task] else { return .refused("\(name) has no task \"\(tick.task)\"") }
        let admitted = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.unstarted += 1
            return true
        }
        guard admitted else { return .refused("\(name) is stopping") }
        let runner = self.runner
        return .accepted(start: {
            let allStarted = self.state.withLock { state -> ResumeOnce<Void>? in
                state.nextID += 1
                let id = state.nextID
                state.jobs[id] = Task {
                    let outcome =
                        Task.isCancelled ? JobOutcome.cancelled(milliseconds: 0) : await runner.run(task, tick: tick)
                    await report(outcome)
                    self.state.withLock { _ = $0.jobs.removeValue(forKey: id) }
                }
                state.unstarted -= 1
                return state.unstarted == 0 ? state.allStarted : nil
            }
            allStarted?.resume(())
        })
    }

    /// Runs one tick here now and returns how it ended (admitted and started at once).
    public func run(_ tick: Tick) async -> JobOutcome {
        let outcome = ResumeOnce<JobOutcome>()
        switch admit(tick, report: { outcome.resume($0) }) {
        case .refused(let reason): return .notRun(reason: reason)
        case .accepted(let start): start()
        }
        return await outcome.value
    }

    /// Waits for graceful shutdown, then lets the running ticks finish (see the type's documentation).
    public func run() async throws {
        try? await gracefulShutdown()
        let allStarted = state.withLock { state -> ResumeOnce<Void>? in
            state.stopping = true
            guard state.unstarted > 0 else { return nil }
            state.allStarted = ResumeOnce()
            return state.allStarted
        }
        // Acknowledged runs are about to start (their start follows the acknowledgement's write): they run too.
        await allStarted?.value
        let jobs = state.withLock { Array($0.jobs.values) }
        await Scheduler.finish(
            jobs, within: shutdownTimeout, cancelAtOnce: Task.isCancelled, log: runner.log, prefix: "[\(name)]")
    }
}
