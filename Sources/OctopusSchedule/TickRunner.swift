import Logging
import OctopusSystem
public import ServiceLifecycle
import Synchronization

/// Runs ticks that another process times (a worker of a cluster, whose agent holds the timers), each through a
/// ``JobRunner``. As a `Service` it keeps the running ones in view: at a graceful stop it takes no new tick (they are
/// answered `notRun`), lets the running ones finish for up to `shutdownTimeout`, then cancels what is left.
public final class TickRunner: Service, Sendable {
    public let runner: JobRunner
    let tasks: [String: ScheduledTask]
    let shutdownTimeout: Duration
    /// Who runs the ticks, in outcomes (`worker 2 (pid 4242)`).
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

    /// Runs one tick here and returns how it ended. Cancelling the caller cancels the run.
    public func run(_ tick: Tick) async -> JobOutcome {
        guard let task = tasks[tick.task] else {
            return .notRun(reason: "\(name) has no task \"\(tick.task)\"")
        }
        let outcome = ResumeOnce<JobOutcome>()
        let runner = self.runner
        let admitted = state.withLock { state -> Task<Void, Never>? in
            guard !state.stopping else { return nil }
            state.nextID += 1
            let id = state.nextID
            let job = Task {
                outcome.resume(await runner.run(task, tick: tick))
                self.state.withLock { _ = $0.jobs.removeValue(forKey: id) }
            }
            state.jobs[id] = job
            return job
        }
        guard let job = admitted else { return .notRun(reason: "\(name) is stopping") }
        return await withTaskCancellationHandler {
            await outcome.value
        } onCancel: {
            job.cancel()
        }
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
