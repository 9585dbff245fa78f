import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

@testable import OctopusSchedule

@Suite struct SchedulerTests {
    @Test func intervalTicksFollowTheScheduledTimesNotTheWakeUps() async throws {
        let h = Harness()
        let runs = Mutex<[Tick]>([])
        try h.register("beat", Schedule(interval: "10s")) { context in runs.withLock { $0.append(context.tick) } }
        h.start()
        for k in 1...3 {
            let due = t0.addingTimeInterval(Double(10 * k))
            await h.waitForSleeper(at: due)
            h.advance(to: due.addingTimeInterval(0.3))  // wake 300 ms late each time
            await eventually("run \(k)") { runs.withLock { $0.count } == k }
            // The runner reads the clock once more after the body returns: move time only after that.
            await eventually("run \(k) logged") { h.lines.count("beat finished in ") == k }
        }
        await h.waitForSleeper(at: t0.addingTimeInterval(40))  // not 40.9: no drift
        await h.stop()
        let ticks = runs.withLock { $0 }
        #expect(ticks.map(\.scheduledTime) == [10, 20, 30].map { t0.addingTimeInterval($0) })
        #expect(ticks.map(\.latenessMilliseconds) == [300, 300, 300])
        #expect(Set(ticks.map(\.jobID)).count == 3)
        #expect(h.lines.messages.contains("[Timer] beat next at \(ISOTime.format(t0.addingTimeInterval(20), in: .current, fractional: true))"))
        #expect(h.lines.count("beat started (scheduled ") == 3)
        #expect(h.lines.count("late 300 ms") == 3)
        #expect(h.lines.count("beat finished in 0 ms") == 3)
    }

    @Test func neverFiresEarly() async throws {
        let h = Harness()
        let runs = Atomic<Int>(0)
        try h.register("beat", Schedule(interval: "1m")) { _ in runs.add(1, ordering: .relaxed) }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(60))
        h.advance(to: t0.addingTimeInterval(59.999))
        await h.waitForSleeper(at: t0.addingTimeInterval(60))
        #expect(runs.load(ordering: .relaxed) == 0)
        h.advance(to: t0.addingTimeInterval(60))
        await eventually("the run") { runs.load(ordering: .relaxed) == 1 }
        await h.stop()
    }

    @Test func cronTicksInTheScheduleLog() async throws {
        let h = Harness()
        let runs = Mutex<[Date]>([])
        try h.register("cron", Schedule(cron: "*/20 * * * * *", timeZone: "UTC")) { c in runs.withLock { $0.append(c.tick.scheduledTime) } }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(20))
        #expect(h.lines.messages.contains("[Timer] cron next at 2026-11-21T12:00:20.000+00:00"))
        h.advance(to: t0.addingTimeInterval(20))
        await h.waitForSleeper(at: t0.addingTimeInterval(40))
        await eventually("the first run's end") { h.lines.count("cron finished") == 1 }
        h.advance(to: t0.addingTimeInterval(40.002))
        await h.waitForSleeper(at: t0.addingTimeInterval(60))
        await eventually("two runs") { runs.withLock { $0.count } == 2 }
        await h.stop()
        #expect(runs.withLock { $0 } == [t0.addingTimeInterval(20), t0.addingTimeInterval(40)])
        #expect(h.lines.messages.contains { $0.hasPrefix("[Job#2] cron started (scheduled 2026-11-21T12:00:40.000+00:00, late 2 ms)") })
    }

    @Test func overlapSkipSkipsAndLogsWhileThePreviousRunRuns() async throws {
        let h = Harness()
        let gate = Gate()
        try h.register("slow", Schedule(interval: "1s")) { _ in await gate.wait() }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(1))
        h.advance(to: t0.addingTimeInterval(1))
        await eventually("the first run") { gate.entered.load(ordering: .relaxed) == 1 }
        for k in 2...3 {
            await h.waitForSleeper(at: t0.addingTimeInterval(Double(k)))
            h.advance(to: t0.addingTimeInterval(Double(k)))
        }
        await eventually("two skips") { h.lines.count("skipped: previous run still running") == 2 }
        gate.open()
        await eventually("the first run's end") { h.lines.count("slow finished") == 1 }
        await h.stop()
        #expect(gate.entered.load(ordering: .relaxed) == 1)
        #expect(h.lines.messages.contains("[Job#2] slow skipped: previous run still running"))
    }

    @Test func overlapAllowRunsSideBySide() async throws {
        let h = Harness()
        let gate = Gate()
        try h.register("slow", Schedule(interval: "1s", overlap: .allow)) { _ in await gate.wait() }
        h.start()
        for k in 1...3 {
            await h.waitForSleeper(at: t0.addingTimeInterval(Double(k)))
            h.advance(to: t0.addingTimeInterval(Double(k)))
        }
        await eventually("three runs at once") { gate.entered.load(ordering: .relaxed) == 3 }
        gate.open()
        await eventually("three ends") { h.lines.count("slow finished") == 3 }
        await h.stop()
        #expect(h.lines.count("skipped") == 0)
    }

    @Test func overlapQueueKeepsOneWaiting() async throws {
        let h = Harness()
        let gate = Gate()
        try h.register("slow", Schedule(interval: "1s", overlap: .queue)) { _ in await gate.wait() }
        h.start()
        for k in 1...3 {
            await h.waitForSleeper(at: t0.addingTimeInterval(Double(k)))
            h.advance(to: t0.addingTimeInterval(Double(k)))
        }
        await eventually("a queued tick and a skip") {
            h.lines.count("queued: previous run still running") == 1 && h.lines.count("and another is waiting") == 1
        }
        #expect(gate.entered.load(ordering: .relaxed) == 1)
        gate.open()
        await eventually("the queued run") { h.lines.count("slow finished") == 2 }
        await h.stop()
        #expect(h.lines.messages.contains("[Job#2] slow queued: previous run still running"))
        #expect(h.lines.messages.contains { $0.hasPrefix("[Job#2] slow started (scheduled 2026-11-21T12:00:02.000") })
        #expect(h.lines.messages.contains("[Job#3] slow skipped: previous run still running and another is waiting"))
    }

    @Test(arguments: [MissedPolicy.skip, .runOnce])
    func missedTicksAfterAForwardClockJump(_ policy: MissedPolicy) async throws {
        let h = Harness()
        let runs = Mutex<[Tick]>([])
        try h.register("minutely", Schedule(interval: "1m", missed: policy)) { c in runs.withLock { $0.append(c.tick) } }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(60))
        h.advance(to: t0.addingTimeInterval(60))
        await eventually("the first run") { runs.withLock { $0.count } == 1 }
        await h.waitForSleeper(at: t0.addingTimeInterval(120))
        // The clock jumps 10 minutes and 30 seconds forward: the ticks of 2:00 … 11:00 are missed.
        h.advance(to: t0.addingTimeInterval(660 + 30))
        await h.waitForSleeper(at: t0.addingTimeInterval(720))
        await h.stop()
        #expect(h.lines.messages.contains { $0.hasPrefix("[Timer] minutely missed 10 tick(s) since ") })
        let ticks = runs.withLock { $0 }
        switch policy {
        case .skip:
            #expect(ticks.count == 1)
            #expect(h.lines.count("; skipped") == 1)
        case .runOnce:
            #expect(ticks.count == 2)
            #expect(ticks.last?.reason == "missed")
            #expect(ticks.last?.scheduledTime == t0.addingTimeInterval(660))
            #expect(h.lines.count("running once for them") == 1)
        }
    }

    @Test func aSmallStallRunsTheLatestTickOnly() async throws {
        let h = Harness()
        let runs = Mutex<[Tick]>([])
        try h.register("fast", Schedule(interval: "100ms")) { c in runs.withLock { $0.append(c.tick) } }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(0.1))
        h.advance(to: t0.addingTimeInterval(0.35))  // 0.1, 0.2, 0.3 due: the latest is 50 ms late
        await h.waitForSleeper(at: t0.addingTimeInterval(0.4))
        await eventually("a run") { runs.withLock { $0.count } == 1 }
        await h.stop()
        #expect(abs((runs.withLock { $0 }.first?.scheduledTime ?? t0).timeIntervalSince(t0) - 0.3) < 0.000_01)
        #expect(h.lines.messages.contains { $0.contains("missed 2 tick(s)") && $0.hasSuffix("running the latest") })
    }

    @Test func immediateRunsAtStartBeforeTheFirstTick() async throws {
        let h = Harness()
        let runs = Mutex<[Tick]>([])
        try h.register("boot", Schedule(interval: "1h", immediate: true)) { c in runs.withLock { $0.append(c.tick) } }
        try h.register("once", Schedule(immediate: true)) { c in runs.withLock { $0.append(c.tick) } }
        h.start()
        await eventually("two immediate runs") { runs.withLock { $0.count } == 2 }
        await h.waitForSleeper(at: t0.addingTimeInterval(3600))
        await h.stop()
        #expect(runs.withLock { $0 }.allSatisfy { $0.reason == "immediate" && $0.scheduledTime == t0 })
    }

    @Test func aRunPastItsTimeoutIsCancelledAndLogged() async throws {
        let h = Harness()
        let sawCancellation = Atomic<Bool>(false)
        try h.register("stuck", Schedule(interval: "1m", timeout: .seconds(5))) { _ in
            do {
                try await h.clock.sleep(until: .distantFuture)
            } catch {
                sawCancellation.store(true, ordering: .relaxed)
                throw error
            }
        }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(60))
        h.advance(to: t0.addingTimeInterval(60))
        await h.waitForSleeper(at: t0.addingTimeInterval(65))  // the timeout
        h.advance(to: t0.addingTimeInterval(65))
        await eventually("the timeout line") { h.lines.count("[Job#1] stuck timed out after 5000 ms") == 1 }
        await eventually("the body cancelled") { sawCancellation.load(ordering: .relaxed) }
        await h.stop()
        #expect(h.scheduler.lastOutcomes["stuck"] == .timedOut(milliseconds: 5000))
    }

    @Test func disabledAndOtherEnvironmentsDoNotRun() async throws {
        let h = Harness(environment: "prod")
        let runs = Mutex<[String]>([])
        try h.register("off", Schedule(interval: "1s", disable: true)) { c in runs.withLock { $0.append(c.tick.task) } }
        try h.register("devOnly", Schedule(interval: "1s", env: ["local", "unittest"])) { c in runs.withLock { $0.append(c.tick.task) } }
        try h.register("prodOnly", Schedule(interval: "1s", env: ["prod"])) { c in runs.withLock { $0.append(c.tick.task) } }
        h.start()
        await h.waitForSleeper(at: t0.addingTimeInterval(1))
        h.advance(to: t0.addingTimeInterval(1))
        await eventually("prodOnly ran") { runs.withLock { $0.count } == 1 }
        await h.waitForSleeper(at: t0.addingTimeInterval(2))
        #expect(h.clock.sleepers.count == 1)
        await h.stop()
        #expect(runs.withLock { $0 } == ["prodOnly"])
        #expect(h.lines.messages.contains("[Timer] off is disabled"))
        #expect(h.lines.messages.contains("[Timer] devOnly does not run in env \"prod\" (env: local, unittest)"))
    }

    @Test func failuresAreLoggedWithTheError() async throws {
        let h = Harness()
        struct Broken: Error, CustomStringConvertible { var description: String { "database unreachable" } }
        try h.register("sync", Schedule(interval: "1s")) { _ in throw Broken() }
        let outcome = try await h.scheduler.runNow("sync")
        #expect(outcome == .failed(milliseconds: 0, error: "database unreachable"))
        #expect(h.lines.messages.contains("[Job#1] sync failed in 0 ms: database unreachable"))
        #expect(h.lines.messages.contains { $0.hasPrefix("[Job#1] sync started") && $0.hasSuffix("[manual]") })
    }

    @Test func runNowRunsOnceAndUnknownNamesAreErrors() async throws {
        let h = Harness()
        let context = Mutex<ScheduleContext?>(nil)
        try h.register("report", Schedule(cron: "0 0 * * *")) { c in
            c.logger.info("working")
            context.withLock { $0 = c }
        }
        #expect(try await h.scheduler.runNow("report") == .finished(milliseconds: 0))
        #expect(context.withLock { $0 }?.tick.reason == "manual")
        #expect(h.lines.messages(label: "schedule.report") == ["working"])
        await #expect(throws: ScheduleError.self) { try await h.scheduler.runNow("nope") }
    }

    @Test func gracefulStopLetsRunningTasksFinish() async throws {
        let h = Harness()
        let gate = Gate()
        let finished = Atomic<Bool>(false)
        try h.register("slow", Schedule(immediate: true)) { _ in
            await gate.wait()
            finished.store(true, ordering: .relaxed)
        }
        h.start()
        await eventually("the run") { gate.entered.load(ordering: .relaxed) == 1 }
        h.scheduler.stop()
        try await Task.sleep(for: .milliseconds(20))
        gate.open()
        await h.stop()
        let didFinish = finished.load(ordering: .relaxed)
        #expect(didFinish)
        #expect(h.lines.messages.contains("[Timer] stopping: waiting for 1 running job(s)"))
        #expect(h.lines.count("slow finished") == 1)
    }

    @Test func aStopCancelsWhatOutlivesTheShutdownTimeout() async throws {
        let h = Harness(shutdownTimeout: .milliseconds(50))
        try h.register("forever", Schedule(immediate: true)) { _ in try await Task.sleep(for: .seconds(3600)) }
        h.start()
        await eventually("the run") { h.lines.count("forever started") == 1 }
        await h.stop()
        #expect(h.lines.messages.contains { $0.contains("still running after") })
        #expect(h.lines.messages.contains { $0.hasPrefix("[Job#1] forever cancelled after") })
    }

    @Test func registrationRefusesWhatCannotRun() throws {
        let h = Harness()
        let body: @Sendable (ScheduleContext) async throws -> Void = { _ in }
        func error(_ name: String, _ schedule: Schedule) -> String {
            do {
                try h.register(name, schedule, body)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(error("a", Schedule(interval: "5x")) == #"task "a" (interval): invalid interval "5x": unknown unit "x"; units are ms, s, m, h, d, w"#)
        #expect(error("b", Schedule()) == #"task "b" (interval): a schedule needs an interval, a cron expression, or immediate: true"#)
        #expect(error("c", Schedule(cron: "0 61 * * * *")).contains(#"minute "61" is out of range 0-59"#))
        #expect(error("d", Schedule(interval: "1s", type: "sometimes")).contains(#"unknown schedule type "sometimes""#))
        #expect(error("e", Schedule(interval: "0s")).contains("must be more than zero"))
        #expect(error("f", Schedule(cron: "* * * * *", timeZone: "Mars/Olympus")).contains("unknown time zone"))
        #expect(error("g", Schedule(interval: "1s")) == "accepted")
        #expect(error("g", Schedule(interval: "1s")).contains("already registered"))
    }

    @Test func aSubscriptionIsRegisteredUnderItsTypeName() async throws {
        struct Cleanup: Subscription {
            static let schedule = Schedule(interval: "5m", type: .all)
            let counter: Counter
            func subscribe(_ context: ScheduleContext) async throws { counter.value.add(1, ordering: .relaxed) }
        }
        let h = Harness()
        let counter = Counter()
        try h.scheduler.register(Cleanup(counter: counter))
        #expect(h.scheduler.taskNames == ["Cleanup"])
        _ = try await h.scheduler.runNow("Cleanup")
        let runs = counter.value.load(ordering: .relaxed)
        #expect(runs == 1)
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
