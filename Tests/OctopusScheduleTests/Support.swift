import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

@testable import OctopusSchedule

let t0 = Date(timeIntervalSince1970: 1_795_262_400)  // 2026-11-21T12:00:00Z

/// A scheduler on a manual clock with its lines collected, running in a task.
final class Harness: Sendable {
    let clock = ManualScheduleClock(t0)
    let lines = LineCollector()
    let scheduler: Scheduler
    let running = Mutex<Task<Void, Never>?>(nil)

    init(environment: String = "test", shutdownTimeout: Duration = .seconds(5)) {
        let lines = self.lines
        scheduler = Scheduler(
            environment: environment, clock: clock, log: lines.logger("schedule"), makeLogger: { lines.logger($0) },
            shutdownTimeout: shutdownTimeout)
    }

    func register(_ name: String, _ schedule: Schedule, _ body: @escaping @Sendable (ScheduleContext) async throws -> Void) throws(ScheduleError) {
        try scheduler.register(ScheduledTask(name: name, schedule: schedule, body))
    }

    func start() {
        let scheduler = self.scheduler
        running.withLock { $0 = Task { try? await scheduler.run() } }
    }

    func stop() async {
        scheduler.stop()
        await running.withLock { $0 }?.value
    }

    /// Waits until a timer sleeps until `date` (so moving the clock now wakes exactly that tick).
    func waitForSleeper(at date: Date, sourceLocation: SourceLocation = #_sourceLocation) async {
        await eventually("a timer sleeping until \(ISOTime.format(date, in: .gmt, fractional: true))", sourceLocation: sourceLocation) {
            clock.sleepers.count > 0 && abs((clock.sleepers.earliest ?? .distantPast).timeIntervalSince(date)) < 0.000_01
        }
    }

    func advance(to date: Date) { clock.set(to: date) }
}

/// A gate a task body waits at until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    let entered = Atomic<Int>(0)

    func wait() async {
        entered.add(1, ordering: .relaxed)
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
