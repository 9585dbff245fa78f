import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TestSupport

@testable import OctopusSchedule

/// A task executor on a serial queue that knows whether a job of its own is running.
final class QueueExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "test-executor")
    private let key = DispatchSpecificKey<Bool>()
    let jobs = Atomic<Int>(0)

    init() { queue.setSpecific(key: key, value: true) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.add(1, ordering: .relaxed)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == true }
}

/// A dispatcher that hands ticks nowhere: it records where its dispatches ran.
final class ExecutorDispatcher: Dispatcher {
    let executor: QueueExecutor
    let onExecutor = Mutex<[Bool]>([])
    init(executor: QueueExecutor) { self.executor = executor }
    var taskExecutor: (any TaskExecutor)? { executor }

    func dispatch(_ tick: Tick, of task: ScheduledTask) async -> JobOutcome {
        onExecutor.withLock { $0.append(executor.isCurrent) }
        return .finished(milliseconds: 0)
    }
}

@Suite struct TickRunnerTests {
    @Test func aDispatcherWithATaskExecutorGetsItsTimersAndDispatchesThere() async throws {
        let clock = ManualScheduleClock(t0)
        let lines = LineCollector()
        let dispatcher = ExecutorDispatcher(executor: QueueExecutor())
        let scheduler = Scheduler(environment: "test", clock: clock, log: lines.logger("schedule"), dispatcher: dispatcher)
        try scheduler.register(ScheduledTask(name: "tick", schedule: Schedule(interval: "1s", immediate: true)) { _ in })
        let running = Task { try? await scheduler.run() }
        await eventually("the immediate tick") { dispatcher.onExecutor.withLock { $0.count } == 1 }
        await eventually("the timer asleep") { clock.sleepers.count == 1 }
        clock.advance(by: 1)
        await eventually("the timer's tick") { dispatcher.onExecutor.withLock { $0.count } == 2 }
        scheduler.stop()
        await running.value
        #expect(dispatcher.onExecutor.withLock { $0 } == [true, true])
        // The timer woke there too: each tick's job and the timer's resumptions went through it.
        #expect(dispatcher.executor.jobs.load(ordering: .relaxed) >= 4)
    }

    @Test func aRunAdmittedBeforeAGracefulStopRunsAndIsWaitedForThoughItStartsAfter() async throws {
        let lines = LineCollector()
        let gate = Gate()
        let slow = ScheduledTask(name: "slow", schedule: Schedule(interval: "1m", type: .worker)) { _ in await gate.wait() }
        let probe = ScheduledTask(name: "probe", schedule: Schedule(interval: "1m", type: .worker)) { _ in }
        let runner = TickRunner(
            runner: JobRunner(log: lines.logger("schedule"), logsRuns: false), tasks: [slow, probe],
            shutdownTimeout: .seconds(60), name: "worker 1")
        let events = Mutex<[String]>([])
        let tick = Tick(task: "slow", jobID: 1, scheduledTime: t0, actualTime: t0)
        guard case .accepted(let start) = runner.admit(tick, report: { outcome in events.withLock { $0.append("\(outcome)") } })
        else {
            Issue.record("the tick was refused")
            return
        }
        let group = ServiceGroup(
            configuration: .init(services: [runner], logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }))
        let serving = Task {
            try? await group.run()
            events.withLock { $0.append("stopped") }
        }
        await group.triggerGracefulShutdown()
        // Stopping: new ticks are refused; the one acknowledged before is not forgotten.
        await eventually("new ticks refused") {
            let probeTick = Tick(task: "probe", jobID: 2, scheduledTime: t0, actualTime: t0)
            switch runner.admit(probeTick, report: { _ in }) {
            case .refused(let reason): return reason == "worker 1 is stopping"
            case .accepted(let start): start(); return false
            }
        }
        start()
        await eventually("the run") { gate.entered.load(ordering: .relaxed) == 1 }
        gate.open()
        await serving.value
        #expect(events.withLock { $0 }.count == 2)
        #expect(events.withLock { $0 }.first?.hasPrefix("finished in") == true)
        #expect(events.withLock { $0 }.last == "stopped")
    }
}
