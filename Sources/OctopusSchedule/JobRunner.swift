public import Foundation
public import Logging
public import OctopusConfig
import OctopusSystem
import Synchronization

/// Runs one tick of a task in this process: logs `started`, runs the body with the task's timeout, and logs how it
/// ended. Used by the ``LocalDispatcher``, by `octopus run`, and by workers in the process model.
public struct JobRunner: Sendable {
    public let clock: any ScheduleClock
    /// The schedule log (category `schedule`).
    public let log: Logger
    public let makeLogger: @Sendable (String) -> Logger
    public let configuration: ConfigValue
    /// The zone times are printed in.
    public let timeZone: TimeZone
    /// Whether the runner writes the `started` and outcome lines of the schedule log. A worker of a cluster does not:
    /// the agent, which handed it the tick, writes them with the worker's id and pid.
    public let logsRuns: Bool

    public init(
        clock: any ScheduleClock = SystemScheduleClock.shared, log: Logger = Logger(label: "schedule"),
        makeLogger: @escaping @Sendable (String) -> Logger = { Logger(label: $0) },
        configuration: ConfigValue = ConfigValue(.null), timeZone: TimeZone = .current, logsRuns: Bool = true
    ) {
        self.clock = clock
        self.log = log
        self.makeLogger = makeLogger
        self.configuration = configuration
        self.timeZone = timeZone
        self.logsRuns = logsRuns
    }

    public func run(_ task: ScheduledTask, tick: Tick) async -> JobOutcome {
        let start = clock.now()
        if logsRuns {
            log.info(
                "[Job#\(tick.jobID)] \(task.name) started (scheduled \(ISOTime.format(tick.scheduledTime, in: timeZone, fractional: true)), late \(max(0, Int((start.timeIntervalSince(tick.scheduledTime) * 1000).rounded()))) ms)\(tick.reason == "timer" ? "" : " [\(tick.reason)]")"
            )
        }
        let context = ScheduleContext(tick: tick, logger: makeLogger(task.category), configuration: configuration)
        let ending = await Self.race(task.body, context, timeout: task.schedule.timeout, clock: clock, start: start)
        let ms = max(0, Int((clock.now().timeIntervalSince(start) * 1000).rounded()))
        let outcome: JobOutcome
        switch ending {
        case .done(.success): outcome = .finished(milliseconds: ms)
        case .done(.failure(let error)) where error is CancellationError: outcome = .cancelled(milliseconds: ms)
        case .done(.failure(let error)): outcome = .failed(milliseconds: ms, error: String(describing: error))
        case .timedOut: outcome = .timedOut(milliseconds: ms)
        }
        if logsRuns {
            let line: Logger.Message = "[Job#\(tick.jobID)] \(task.name) \(outcome.description)"
            if outcome.succeeded { log.info(line) } else { log.error(line) }
        }
        return outcome
    }

    enum Ending: Sendable {
        case done(Result<Void, any Error>)
        case timedOut
    }

    /// Runs `body`, and at the timeout cancels it and returns without waiting for it: a run that ignores
    /// cancellation cannot hold the scheduler. Cancelling the caller cancels the body. With no timeout the body runs
    /// in the caller's task (nothing to race; a task of its own would only cost a hand-off to another thread).
    static func race(
        _ body: @escaping @Sendable (ScheduleContext) async throws -> Void, _ context: ScheduleContext,
        timeout: Duration?, clock: any ScheduleClock, start: Date
    ) async -> Ending {
        guard let timeout else {
            do {
                try await body(context)
                return .done(.success(()))
            } catch {
                return .done(.failure(error))
            }
        }
        let once = ResumeOnce<Ending>()
        let work = Task {
            do {
                try await body(context)
                once.resume(.done(.success(())))
            } catch {
                once.resume(.done(.failure(error)))
            }
        }
        let (seconds, attoseconds) = timeout.components
        let deadline = start.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
        let timer = Task {
            do {
                try await clock.sleep(until: deadline)
                once.resume(.timedOut)
            } catch {}
        }
        let ending = await withTaskCancellationHandler {
            await once.value
        } onCancel: {
            work.cancel()
        }
        timer.cancel()
        if case .timedOut = ending { work.cancel() }
        return ending
    }
}
