/// Where a tick runs. In one process the ``LocalDispatcher`` runs the task here; the process model sends ticks to
/// workers behind the same seam (`worker`: exactly one, `all`: every one). A custom schedule type is a dispatcher
/// registered with the ``Scheduler`` under the type's name.
public protocol Dispatcher: Sendable {
    /// Runs `tick` of `task` and returns once it has finished wherever it ran.
    func dispatch(_ tick: Tick, of task: ScheduledTask) async -> JobOutcome

    /// Where the timers of this dispatcher's tasks and their ``dispatch(_:of:)`` run; nil (the default) for the
    /// global pool. A dispatcher that only hands ticks over a connection names the connection's event loop, so that
    /// a tick goes from its timer to the socket without waking another thread. Never set it to an executor that
    /// runs the tasks' bodies: a body that blocks would hold the timers.
    var taskExecutor: (any TaskExecutor)? { get }
}

extension Dispatcher {
    public var taskExecutor: (any TaskExecutor)? { nil }
}

/// How a run ended.
public enum JobOutcome: Sendable, Hashable, Codable, CustomStringConvertible {
    case finished(milliseconds: Int)
    case failed(milliseconds: Int, error: String)
    case timedOut(milliseconds: Int)
    /// The run was cancelled because the service stopped.
    case cancelled(milliseconds: Int)
    /// Nothing ran: no process could take the tick, or the task is unknown where it was sent.
    case notRun(reason: String)

    public var succeeded: Bool {
        if case .finished = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .finished(let ms): "finished in \(ms) ms"
        case .failed(let ms, let error): "failed in \(ms) ms: \(error)"
        case .timedOut(let ms): "timed out after \(ms) ms"
        case .cancelled(let ms): "cancelled after \(ms) ms"
        case .notRun(let reason): "not run: \(reason)"
        }
    }
}

/// Runs every tick in this process.
public struct LocalDispatcher: Dispatcher {
    public let runner: JobRunner

    public init(runner: JobRunner) {
        self.runner = runner
    }

    public func dispatch(_ tick: Tick, of task: ScheduledTask) async -> JobOutcome {
        await runner.run(task, tick: tick)
    }
}
