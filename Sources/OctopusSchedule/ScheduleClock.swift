public import Foundation
import CShims
import Synchronization

/// Wall-clock time for the scheduler: what time it is, and waiting until a time. Injected, so tests move time
/// instead of sleeping.
public protocol ScheduleClock: Sendable {
    func now() -> Date
    /// Returns at or after `deadline` as ``now()`` tells it (never before), or throws `CancellationError`.
    func sleep(until deadline: Date) async throws
}

/// The system's wall clock. Waiting is done by one timer thread that sleeps on an absolute `CLOCK_REALTIME`
/// deadline (a condition variable's timed wait): it wakes within a fraction of a millisecond of the deadline, and
/// when the clock is set forward it wakes at once rather than sleeping out the old interval.
public final class SystemScheduleClock: ScheduleClock, @unchecked Sendable {
    public static let shared = SystemScheduleClock()

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var sleepers: [Int: (deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = [:]
    private var nextID = 0
    private var started = false

    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        if Date() >= deadline { return }
        let id = allocateID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                condition.lock()
                if Task.isCancelled {
                    condition.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                sleepers[id] = (deadline, continuation)
                condition.signal()
                condition.unlock()
            }
        } onCancel: {
            condition.lock()
            let removed = sleepers.removeValue(forKey: id)
            condition.unlock()
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    private func allocateID() -> Int {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        if !started {
            started = true
            let thread = Thread { [self] in
                octopus_name_thread("octopus-timer")
                self.timerLoop()
            }
            thread.start()
        }
        return nextID
    }

    private func timerLoop() {
        condition.lock()
        while true {
            guard let earliest = sleepers.values.min(by: { $0.deadline < $1.deadline })?.deadline else {
                condition.wait()
                continue
            }
            let now = Date()
            if now >= earliest {
                for (id, sleeper) in sleepers where sleeper.deadline <= now {
                    sleepers.removeValue(forKey: id)
                    sleeper.continuation.resume()
                }
            } else {
                _ = condition.wait(until: earliest)
            }
        }
    }
}

/// A clock that moves only when told: for tests of timing that must not sleep for real.
///
/// ```swift
/// let clock = ManualScheduleClock(ISOTime.parse("2026-11-21T12:00:00Z", in: .gmt)!)
/// clock.advance(by: 60)     // wakes every sleeper whose deadline has come
/// ```
public final class ManualScheduleClock: ScheduleClock {
    private struct State {
        var now: Date
        var sleepers: [Int: (deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = [:]
        var nextID = 0
    }

    private let state: Mutex<State>

    public init(_ start: Date) {
        state = Mutex(State(now: start))
    }

    public func now() -> Date { state.withLock { $0.now } }

    /// How many sleepers wait, and the earliest deadline among them.
    public var sleepers: (count: Int, earliest: Date?) {
        state.withLock { ($0.sleepers.count, $0.sleepers.values.map(\.deadline).min()) }
    }

    public func sleep(until deadline: Date) async throws {
        let id: Int? = state.withLock { state in
            if state.now >= deadline { return nil }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.now >= deadline { return .success(()) }
                    state.sleepers[id] = (deadline, continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let removed = state.withLock { $0.sleepers.removeValue(forKey: id) }
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Sets the time (forward or back) and wakes every sleeper whose deadline has come.
    public func set(to date: Date) {
        let due = state.withLock { state in
            state.now = date
            let due = state.sleepers.filter { $0.value.deadline <= date }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    public func advance(by seconds: TimeInterval) {
        set(to: now().addingTimeInterval(seconds))
    }
}
