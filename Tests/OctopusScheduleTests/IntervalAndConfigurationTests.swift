import Foundation
import Logging
import OctopusConfig
import Synchronization
import Testing
import TestSupport

@testable import OctopusSchedule

@Suite struct IntervalTests {
    @Test(arguments: [
        ("5s", 5_000), ("1m30s", 90_000), ("2h", 7_200_000), ("250ms", 250), ("1d", 86_400_000), ("1w", 604_800_000),
        ("5000", 5_000), ("1.5h", 5_400_000), ("1h 30m", 5_400_000), ("10S", 10_000),
    ] as [(String, Int64)])
    func parses(_ text: String, _ milliseconds: Int64) throws {
        #expect(try Interval(parsing: text).milliseconds == milliseconds)
    }

    @Test(arguments: [
        ("0s", "must be more than zero"), ("-5s", "must be more than zero"), ("0", "must be more than zero"),
        ("5x", #"unknown unit "x""#), ("", "is empty"), ("s", "expected a number"), ("5", "accepted"),
        ("1m1m", "twice"), ("10", "accepted"), ("0.0001s", "must be at least 1 ms"), ("5 s", "accepted"),
    ])
    func rejects(_ text: String, _ words: String) {
        do {
            _ = try Interval(parsing: text)
            #expect(words == "accepted", "\(text) was accepted")
        } catch {
            #expect(error.description.contains(words), "\(error)")
            #expect(error.description.hasPrefix("invalid interval \"\(text)\""))
        }
    }

    @Test func printsCompactly() throws {
        #expect(try Interval(parsing: "90s").description == "1m30s")
        #expect(try Interval(parsing: "1500").description == "1s500ms")
        #expect(try Interval(milliseconds: 86_400_000 + 1).description == "1d1ms")
    }
}

@Suite struct ScheduleConfigurationTests {
    func read(_ yaml: String) throws -> Result<ScheduleConfiguration, ConfigurationError> {
        let value = try ConfigLoader.parse(yaml, source: "config.yaml")
        do {
            return .success(try ScheduleConfiguration(value))
        } catch {
            return .failure(error)
        }
    }

    @Test func readsBothKindsAndEveryOption() throws {
        let result = try read(
            """
            schedule:
              shutdownTimeout: 3s
              tasks:
                heartbeat: { kind: log, interval: 30s, type: all, message: alive, level: WARN, immediate: true }
                cleanup:
                  kind: command
                  cron: "0 30 3 * * *"
                  cronOptions: { tz: Europe/Berlin }
                  command: find
                  args: [logs, -name, "*.tmp"]
                  timeout: 5m
                  jitter: 2s
                  overlap: queue
                  missed: runOnce
                  env: [prod]
                  category: jobs.cleanup
            """)
        let configuration = try result.get()
        #expect(configuration.shutdownTimeout == .seconds(3))
        #expect(configuration.tasks.map(\.name) == ["heartbeat", "cleanup"])
        let heartbeat = configuration.tasks[0]
        #expect(heartbeat.schedule.interval == "30s")
        #expect(heartbeat.schedule.type == .all)
        #expect(heartbeat.schedule.immediate)
        #expect(heartbeat.kind == .log(LogMessageSpec(message: "alive", level: .warning)))
        let cleanup = configuration.tasks[1]
        #expect(cleanup.schedule.cron == "0 30 3 * * *")
        #expect(cleanup.schedule.timeZone == "Europe/Berlin")
        #expect(cleanup.schedule.timeout == .seconds(300))
        #expect(cleanup.schedule.jitter == .seconds(2))
        #expect(cleanup.schedule.overlap == .queue)
        #expect(cleanup.schedule.missed == .runOnce)
        #expect(cleanup.schedule.env == ["prod"])
        #expect(cleanup.category == "jobs.cleanup")
        #expect(cleanup.kind == .command(CommandSpec(command: "find", arguments: ["logs", "-name", "*.tmp"])))
    }

    @Test func everyErrorIsReportedWithItsKeyPath() throws {
        let result = try read(
            """
            schedule:
              tasks:
                a: { kind: log, interval: 0s, message: x }
                b: { kind: log, cron: "0 61 * * * *", message: x }
                c: { kind: log, message: x }
                d: { kind: command, interval: 5s }
                e: { kind: shell, interval: 5s }
                f: { kind: log, interval: 5s, message: x, overlap: sometimes, tyep: all }
                g: { kind: log, cron: "* * * * *", cronOptions: { tz: Nowhere/City }, message: x }
                h: { kind: log, interval: 5s, message: x, type: roundRobin }
            """)
        guard case .failure(let error) = result else {
            Issue.record("accepted")
            return
        }
        let byPath = Dictionary(grouping: error.issues, by: \.path).mapValues { $0.map(\.message).joined(separator: " | ") }
        #expect(byPath["schedule.tasks.a.interval"]?.contains(#"invalid interval "0s": must be more than zero"#) == true)
        #expect(byPath["schedule.tasks.b.cron"]?.contains(#"minute "61" is out of range 0-59"#) == true)
        #expect(byPath["schedule.tasks.c.interval"]?.contains("needs an interval, a cron expression, or immediate") == true)
        #expect(byPath["schedule.tasks.d.command"]?.contains("missing key \"command\"") == true)
        #expect(byPath["schedule.tasks.e.kind"]?.contains("unknown task kind \"shell\"") == true)
        #expect(byPath["schedule.tasks.f.overlap"]?.contains("policies are skip, allow, queue") == true)
        #expect(byPath["schedule.tasks.f.tyep"]?.contains("did you mean \"type\"") == true)
        #expect(byPath["schedule.tasks.g.cronOptions.tz"]?.contains("unknown time zone \"Nowhere/City\"") == true)
        #expect(byPath["schedule.tasks.h.type"]?.contains("unknown schedule type \"roundRobin\"") == true)
        #expect(error.issues.allSatisfy { $0.origin?.line != nil })
        #expect(error.issues.first { $0.path == "schedule.tasks.b.cron" }?.origin?.line == 4)
    }

    @Test func noSectionMeansNoTasks() throws {
        #expect(try read("log: {}").get().tasks.isEmpty)
    }
}

@Suite struct BuiltInTaskTests {
    @Test func aCommandsOutputGoesLineByLineToItsCategory() async throws {
        let lines = LineCollector()
        let spec = CommandSpec(command: "printf", arguments: ["one\\ntwo\\nno newline"])
        try await spec.run(logger: lines.logger("schedule.echo"))
        let got = lines.messages(label: "schedule.echo")
        #expect(Array(got.prefix(3)) == ["one", "two", "no newline"])
        #expect(got.last?.hasPrefix("printf exited with status 0 in ") == true)
    }

    @Test func stderrAndAFailingStatus() async throws {
        let lines = LineCollector()
        let spec = CommandSpec(command: "echo oops >&2; exit 3", shell: true)
        await #expect(throws: CommandFailure.self) { try await spec.run(logger: lines.logger("t")) }
        #expect(lines.messages.first == "oops")
        #expect(lines.messages.last?.hasPrefix("echo oops >&2; exit 3 exited with status 3") == true)
    }

    @Test func noShellUnlessAsked() async throws {
        let lines = LineCollector()
        try await CommandSpec(command: "echo", arguments: ["$HOME", "a;b"]).run(logger: lines.logger("t"))
        #expect(lines.messages.first == "$HOME a;b")
        do {
            try await CommandSpec(command: "no-such-program-here").run(logger: lines.logger("t"))
            Issue.record("ran")
        } catch {
            #expect("\(error)".contains("not found in PATH"))
        }
    }

    @Test func aTimedOutCommandIsKilled() async throws {
        let h = Harness()
        try h.scheduler.register(
            ConfiguredTask(
                name: "hang", schedule: Schedule(interval: "1h", timeout: .seconds(2)),
                kind: .command(CommandSpec(command: "sleep", arguments: ["600"], killGrace: .milliseconds(200)))
            ).scheduledTask)
        let outcome = Task { try await h.scheduler.runNow("hang") }
        await eventually("the timeout timer") { h.clock.sleepers.count == 1 }
        h.clock.advance(by: 2)
        #expect(try await outcome.value == .timedOut(milliseconds: 2000))
        await eventually("the kill") { h.lines.messages(label: "schedule.hang").contains { $0.contains("killed by signal 15") } }
    }

    @Test func workingDirectoryAndEnvironment() async throws {
        let lines = LineCollector()
        try await CommandSpec(command: "pwd; echo $GREETING", shell: true, directory: "/tmp", environment: ["GREETING": "hi"])
            .run(logger: lines.logger("t"))
        #expect(Array(lines.messages.prefix(2)) == ["/tmp", "hi"])
    }

    @Test func aLogTaskWritesItsMessageAtItsLevel() async throws {
        let h = Harness()
        try h.scheduler.register(
            ConfiguredTask(name: "beat", schedule: Schedule(interval: "30s"), category: "heartbeat", kind: .log(LogMessageSpec(message: "alive"))).scheduledTask)
        _ = try await h.scheduler.runNow("beat")
        #expect(h.lines.messages(label: "heartbeat") == ["alive"])
    }
}

@Suite struct ISOTimeTests {
    /// A tick due at .521 is the binary double .52099999…: printed with the millisecond it is, not the one below.
    @Test func millisecondsPrintAsTheyAreNotRoundedDown() throws {
        let utc = try #require(TimeZone(identifier: "UTC"))
        for ms in [0, 1, 521, 999] {
            let date = Date(timeIntervalSince1970: 1_764_590_413 + Double(ms) / 1000)
            #expect(ISOTime.format(date, in: utc, fractional: true) == "2025-12-01T12:00:13.\(String(format: "%03d", ms))+00:00")
        }
        // Just below a whole second rounds up to it, carrying into the seconds.
        #expect(ISOTime.format(Date(timeIntervalSince1970: 1_764_590_413.9996), in: utc, fractional: true) == "2025-12-01T12:00:14.000+00:00")
    }
}
