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
        var stopping = false
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
    /// as running (a graceful stop waits for it) from now; `report` is awaited before it ends.
    public func admit(_ tick: Tick, report: @escaping @Sendable (JobOutcome) async -> Void) -> Admission {
        guard let task = tasks[tick.task] else { return .refused("\(name) has no task \"\(tick.task)\"") }
        let go = Latch()
        let runner = self.runner
        let admitted = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.nextID += 1
            let id = state.nextID
            state.jobs[id] = Task {
                await go.wait()
                let outcome = Task.isCancelled ? JobOutcome.cancelled(milliseconds: 0) : await runner.run(task, tick: tick)
                await report(outcome)
                self.state.withLock { _ = $0.jobs.removeValue(forKey: id) }
            }
            return true
        }
        return admitted ? .accepted(start: { go.open() }) : .refused("\(name) is stopping")
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
        let jobs = state.withLock { state in
            state.stopping = true
            return Array(state.jobs.values)
        }
        await Scheduler.finish(
            jobs, within: shutdownTimeout, cancelAtOnce: Task.isCancelled, log: runner.log, prefix: "[\(name)]")
    }
}
