import Foundation
public import Logging
import NIOCore
import OctopusRPC
public import OctopusSchedule
import OctopusSystem
import Synchronization

/// The agent's dispatcher: the `Scheduler` times every tick here and hands it out — `worker` to one ready worker at
/// random, `all` to every ready worker — and learns how each run ended.
///
/// A worker acknowledges a tick before its run begins (the run starts once the answer has left the worker). So:
/// - a worker gone **before acknowledging** ran nothing, and the tick goes to another worker (logged);
/// - a worker that dies **after** has its run recorded as failed (`worker 2 (pid N) died`), and the tick runs again
///   elsewhere only when the schedule says `retry: true` (at-least-once by choice);
/// - no worker ready: the tick is `notRun`, with the reason, and counted.
///
/// Outcomes come back as calls from the workers, which retry until an agent takes them: a run in flight when the agent
/// died still reports to its replacement, which the worker also tells of its runs in flight, so that a death is
/// recorded, never silent. Every event is one line of the schedule log with the worker's id and pid.
final class AgentDispatcher: Dispatcher, Sendable {
    private struct Run {
        var order: TickOrder
        var worker: ProcessIdentity
        var task: String
        /// The dispatch waiting for the outcome (nil for a run adopted from the previous agent).
        var waiter: ResumeOnce<Ending>?
        var started: ContinuousClock.Instant
        /// Whether the worker has acknowledged it (it may be running): only then does the worker's death fail it.
        /// Before, a death fails the call instead, and the tick goes to another worker.
        var acknowledged: Bool
    }

    enum Ending: Sendable {
        case reported(JobOutcome)
        case died
    }

    private struct State {
        var runs: [String: Run] = [:]
        var lastRunBy: [String: String] = [:]
        /// Each worker's outcome of the manual ticks (`octopus run`), by job id, until fetched.
        var manual: [Int: [WorkerRun]] = [:]
    }

    private let child: ClusterChild
    private let log: Logger
    private let state = Mutex(State())

    init(child: ClusterChild, log: Logger) {
        self.child = child
        self.log = log
        child.onMembership { [weak self] membership in self?.membershipChanged(membership) }
    }

    // MARK: Dispatching

    /// The timers and the dispatches run on the event loop of the agent's connection to the master: a tick is
    /// written to the socket on the thread its timer woke, and the acknowledgement is read there (the bodies run in
    /// the workers, never here).
    var taskExecutor: (any TaskExecutor)? { child.branch.executor }

    func dispatch(_ tick: Tick, of task: ScheduledTask) async -> JobOutcome {
        let workers = child.workers
        guard !workers.isEmpty else {
            log.warning("[Job#\(tick.jobID)] \(task.name) not run: no worker is ready")
            return .notRun(reason: "no worker is ready")
        }
        if task.schedule.type == .all {
            let outcomes = await withTaskGroup(of: JobOutcome?.self) { group in
                for worker in workers { group.addTask { await self.runAll(tick, of: task, on: worker) } }
                return await group.reduce(into: [JobOutcome]()) { if let outcome = $1 { $0.append(outcome) } }
            }
            guard !outcomes.isEmpty else { return .notRun(reason: "no worker took it") }
            return outcomes.first { !$0.succeeded } ?? outcomes.max { $0.milliseconds < $1.milliseconds } ?? .notRun(reason: "")
        }
        var excluded = Set<Int32>()
        while true {
            guard let worker = child.workers.filter({ !excluded.contains($0.pid) }).randomElement() else {
                log.warning("[Job#\(tick.jobID)] \(task.name) not run: no worker is ready")
                return .notRun(reason: "no worker is ready")
            }
            excluded.insert(worker.pid)
            switch await start(tick, of: task, on: worker) {
            case .started(let waiter):
                switch await waiter.value {
                case .reported(let outcome):
                    return outcome
                case .died:
                    guard task.schedule.retry else {
                        return .failed(milliseconds: 0, error: "\(worker) died")
                    }
                    log.warning("[Job#\(tick.jobID)] \(task.name): running it again in another worker (retry: true)")
                }
            case .notTaken(let why):
                log.warning("[Job#\(tick.jobID)] \(task.name): \(worker) \(why); sending it to another worker")
            case .failed(let why):
                log.error("[Job#\(tick.jobID)] \(task.name) in \(worker) failed: \(why)")
                return .failed(milliseconds: 0, error: "\(worker): \(why)")
            }
        }
    }

    /// One worker's part of an `all` tick: nil when it did not take it (gone, stopping).
    private func runAll(_ tick: Tick, of task: ScheduledTask, on worker: ProcessIdentity) async -> JobOutcome? {
        switch await start(tick, of: task, on: worker) {
        case .started(let waiter):
            switch await waiter.value {
            case .reported(let outcome): return outcome
            case .died: return .failed(milliseconds: 0, error: "\(worker) died")
            }
        case .notTaken(let why):
            log.warning("[Job#\(tick.jobID)] \(task.name): \(worker) \(why); it does not run this tick")
            return nil
        case .failed(let why):
            log.error("[Job#\(tick.jobID)] \(task.name) in \(worker) failed: \(why)")
            return .failed(milliseconds: 0, error: "\(worker): \(why)")
        }
    }

    private enum Start {
        case started(ResumeOnce<Ending>)
        /// Nothing ran there (gone before acknowledging, or refused).
        case notTaken(String)
        case failed(String)
    }

    /// Hands the tick to one worker and waits for its acknowledgement.
    private func start(_ tick: Tick, of task: ScheduledTask, on worker: ProcessIdentity) async -> Start {
        let order = TickOrder(key: "\(child.identity.pid)-\(tick.jobID)-\(worker.pid)", tick: tick, agent: child.identity.pid)
        let waiter = ResumeOnce<Ending>()
        // Known before the call: the outcome may come back before the acknowledgement does.
        state.withLock {
            $0.runs[order.key] = Run(order: order, worker: worker, task: task.name, waiter: waiter, started: .now, acknowledged: false)
        }
        let answer: TickAnswer
        do {
            answer = try await child.branch.call(StartTick.self, order, on: worker.branchID, timeout: .seconds(30))
        } catch let error as RPCError where [.disconnected, .targetOffline, .noSuchAction].contains(error.code) {
            forget(order.key)
            return .notTaken("was gone before it acknowledged the tick (\(error.message))")
        } catch {
            forget(order.key)
            return .failed("no acknowledgement: \(error)")
        }
        if case .refused(let reason) = answer {
            forget(order.key)
            return .notTaken("refused it: \(reason)")
        }
        let outcomeFirst = state.withLock { state -> Bool in
            state.lastRunBy[task.name] = worker.description
            guard state.runs[order.key] != nil else { return true }
            state.runs[order.key]?.acknowledged = true
            return false
        }
        // When the outcome overtook the acknowledgement (both read at once), it logged this line before its own.
        if !outcomeFirst { logStarted(tick, task.name, in: worker) }
        // The worker may have died between its acknowledgement and now: its run has failed.
        if let membership = child.membership { membershipChanged(membership) }
        return .started(waiter)
    }

    private func logStarted(_ tick: Tick, _ task: String, in worker: ProcessIdentity) {
        let late = max(0, Int((Date().timeIntervalSince(tick.scheduledTime) * 1000).rounded()))
        log.info(
            "[Job#\(tick.jobID)] \(task) started in \(worker) (scheduled \(ISOTime.format(tick.scheduledTime, in: .current, fractional: true)), late \(late) ms)\(tick.reason == "timer" ? "" : " [\(tick.reason)]")"
        )
    }

    private func forget(_ key: String) {
        state.withLock { _ = $0.runs.removeValue(forKey: key) }
    }

    // MARK: What workers report

    /// A worker's outcome of a run (of this agent's or, after a restart, of the previous agent's).
    func finished(_ report: TickReport) {
        let order = report.order
        let run = state.withLock { state -> Run? in
            let run = state.runs.removeValue(forKey: order.key)
            if order.tick.reason == "manual" {
                state.manual[order.tick.jobID, default: []].append(WorkerRun(worker: report.worker, outcome: report.outcome))
            }
            return run
        }
        // The acknowledgement and the outcome can be read together, the outcome handled first: the run's `started`
        // line still comes before its outcome's (the acknowledgement, handled after, then logs nothing).
        if let run, !run.acknowledged { logStarted(order.tick, run.task, in: run.worker) }
        let previous = order.agent != child.identity.pid ? " (handed out by the previous agent)" : ""
        let line: Logger.Message = "[Job#\(order.tick.jobID)] \(order.tick.task) in \(report.worker) \(report.outcome.description)\(previous)"
        if report.outcome.succeeded { log.info(line) } else { log.error(line) }
        run?.waiter?.resume(.reported(report.outcome))
    }

    /// A run the previous agent handed out, still going in a worker: its outcome, or its worker's death, is recorded.
    func adopt(_ order: TickOrder, in worker: ProcessIdentity) {
        let fresh = state.withLock { state -> Bool in
            guard state.runs[order.key] == nil else { return false }
            state.runs[order.key] = Run(order: order, worker: worker, task: order.tick.task, waiter: nil, started: .now, acknowledged: true)
            return true
        }
        if fresh {
            log.info("[Job#\(order.tick.jobID)] \(order.tick.task) still running in \(worker) (handed out by the previous agent)")
        }
        // The worker may have died between telling and now.
        if let membership = child.membership { membershipChanged(membership) }
    }

    /// Runs in workers that are no longer members have failed: their workers died.
    private func membershipChanged(_ membership: Membership) {
        let alive = Set(membership.members.map(\.identity.pid))
        let dead = state.withLock { state -> [Run] in
            let gone = state.runs.filter { $0.value.acknowledged && !alive.contains($0.value.worker.pid) }
            for key in gone.keys { state.runs[key] = nil }
            for (_, run) in gone where run.order.tick.reason == "manual" {
                state.manual[run.order.tick.jobID, default: []].append(
                    WorkerRun(worker: run.worker, outcome: .failed(milliseconds: 0, error: "\(run.worker) died")))
            }
            return Array(gone.values)
        }
        for run in dead {
            let previous = run.waiter == nil ? " (handed out by the previous agent)" : ""
            log.error("[Job#\(run.order.tick.jobID)] \(run.task) in \(run.worker) failed: the worker died\(previous)")
            run.waiter?.resume(.died)
        }
    }

    // MARK: For status and `octopus run`

    /// Who ran each task's last tick.
    var lastRunBy: [String: String] { state.withLock { $0.lastRunBy } }

    /// Each worker's outcome of a manual tick (taken once).
    func manualRuns(of jobID: Int) -> [WorkerRun] {
        state.withLock { $0.manual.removeValue(forKey: jobID) ?? [] }
    }
}

/// A worker's side: takes the ticks the agent hands out, acknowledges each before its run begins, and reports each
/// outcome to the agent (retrying until an agent takes it); tells a new agent of the runs still going.
final class WorkerTicks: Sendable {
    private let child: ClusterChild
    private let ticks: TickRunner
    private let inFlight = Mutex<[String: TickOrder]>([:])
    private let lastAgent = Mutex<Int32?>(nil)

    init(child: ClusterChild, ticks: TickRunner) {
        self.child = child
        self.ticks = ticks
        let loop = child.branch.eventLoop
        // Immediate: answered right where the request is read; the run is started by a task queued behind that
        // read, so it begins once the answer has been handed to the kernel — a worker that dies before has run nothing.
        // The handlers hold the worker's side for the life of the process.
        child.branch.handlers.register(StartTick.self) { order in
            switch self.ticks.admit(order.tick, report: { outcome in await self.report(order, outcome) }) {
            case .refused(let reason):
                return .refused(reason)
            case .accepted(let start):
                self.inFlight.withLock { $0[order.key] = order }
                loop.execute { start() }
                return .started
            }
        }
        child.onMembership { membership in self.agentMayHaveChanged(membership) }
    }

    private var agent: ProcessIdentity? {
        child.membership?.members.first { $0.identity.role == .agent && $0.current && $0.state == "ready" }?.identity
    }

    /// Sends the outcome to the agent there is now; waits for one while there is none (up to a minute).
    private func report(_ order: TickOrder, _ outcome: JobOutcome) async {
        let report = TickReport(order: order, worker: child.identity, outcome: outcome)
        let end = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < end {
            if let agent {
                do {
                    _ = try await child.branch.call(TickFinished.self, report, on: agent.branchID, timeout: .seconds(5))
                    break
                } catch {}
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        inFlight.withLock { _ = $0.removeValue(forKey: order.key) }
    }

    /// A new agent hears of the runs the previous one handed out that are still going here.
    private func agentMayHaveChanged(_ membership: Membership) {
        guard let agent else { return }
        let changed = lastAgent.withLock { last -> Bool in
            defer { last = agent.pid }
            return last != nil && last != agent.pid
        }
        guard changed else { return }
        let orders = inFlight.withLock { Array($0.values) }.filter { $0.agent != agent.pid }
        guard !orders.isEmpty else { return }
        let branch = child.branch
        Task {
            for order in orders { _ = try? await branch.call(AdoptTick.self, order, on: agent.branchID, timeout: .seconds(5)) }
        }
    }
}

extension ClusterChild {
    /// Agent: the dispatcher that hands `worker` and `all` ticks to the workers; it answers the workers' reports, the
    /// master's status queries (`scheduler`'s state) and `octopus run`.
    public func dispatcher(for scheduler: @escaping @Sendable () -> Scheduler?, log: Logger) -> any Dispatcher {
        let dispatcher = AgentDispatcher(child: self, log: log)
        branch.handlers.register(TickFinished.self) { report in
            dispatcher.finished(report)
            return true
        }
        branch.handlers.register(AdoptTick.self) { [identity = self.identity] order, context in
            let worker = context.caller.flatMap(ProcessIdentity.init(branchID:)) ?? identity
            dispatcher.adopt(order, in: worker)
            return true
        }
        branch.handlers.register(ScheduleStatusQuery.self) { _ in
            let runners = dispatcher.lastRunBy
            return (scheduler()?.status ?? []).map { status in
                var status = status
                status.lastRunBy = runners[status.name]
                return status
            }
        }
        branch.handlers.register(ScheduleRunNow.self) { name in
            guard let scheduler = scheduler() else {
                return RunNowResult(outcome: .notRun(reason: "the agent has no scheduler"), runs: [], error: "no scheduler")
            }
            do {
                let (tick, outcome) = try await scheduler.runNowWithTick(name)
                return RunNowResult(outcome: outcome, runs: dispatcher.manualRuns(of: tick.jobID), error: nil)
            } catch {
                return RunNowResult(outcome: .notRun(reason: "\(error)"), runs: [], error: "\(error)")
            }
        }
        return dispatcher
    }

    /// Worker: runs the ticks the agent hands out with `ticks` (a service of the worker, which lets running ticks
    /// finish at a graceful stop).
    public func serveTicks(_ ticks: TickRunner) {
        _ = WorkerTicks(child: self, ticks: ticks)
    }
}

extension JobOutcome {
    var milliseconds: Int {
        switch self {
        case .finished(let ms), .timedOut(let ms), .cancelled(let ms): ms
        case .failed(let ms, _): ms
        case .notRun: 0
        }
    }
}
