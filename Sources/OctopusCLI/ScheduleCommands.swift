import ArgumentParser
import Foundation
import Octopus

extension OctopusCommand {
    struct Cron: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the next fire times of a cron expression, one per line (ISO-8601 with the zone's offset).",
            discussion: """
                5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; names (MON, JAN), \
                ranges, steps and lists as in schedule.tasks. Exit status: 0, 2 a bad expression, zone or time (the \
                error on stderr).
                Example: octopus cron "0 9 * * MON-FRI" --tz Asia/Kolkata -n 3
                """
        )

        @Argument(help: "The cron expression (quote it).")
        var expression: String

        @Option(name: .long, help: "The time zone: local, UTC, or an IANA name such as Europe/Paris.")
        var tz = "local"

        @Option(name: .long, help: "Start after this time: ISO-8601 with an offset, or without one as wall time in the zone (default: now).")
        var from: String?

        @Option(name: .short, help: "How many fire times.")
        var n = 5

        @Flag(name: .long, help: "Print the previous fire times before --from instead, newest first.")
        var previous = false

        func run() throws {
            guard let zone = ScheduleZone.parse(tz) else {
                printError("octopus cron: unknown time zone \"\(tz)\"")
                throw ExitCode(2)
            }
            guard n >= 0 else {
                printError("octopus cron: -n must be 0 or more")
                throw ExitCode(2)
            }
            let expression: CronExpression
            do {
                expression = try CronExpression(self.expression, timeZone: zone)
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            var cursor = Date()
            if let from {
                guard let parsed = ISOTime.parse(from, in: zone) else {
                    printError("octopus cron: --from \"\(from)\" is not an ISO-8601 time such as 2026-11-23T09:00:00+05:30")
                    throw ExitCode(2)
                }
                cursor = parsed
            }
            var out = ""
            for _ in 0..<n {
                guard let time = previous ? expression.previous(before: cursor) : expression.next(after: cursor) else { break }
                out += ISOTime.format(time, in: zone) + "\n"
                cursor = time
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one task now, once, and exit with its outcome.",
            discussion: """
                While the service runs, the task runs there, handed out by the agent as its type says (one worker, or \
                every worker), and each worker's outcome is printed; otherwise it runs in this process.
                Exit status: 0 finished, 1 failed, 124 timed out, 2 no such task or a bad configuration.
                """
        )

        @OptionGroup var options: ConfigOptions

        @Argument(help: "The task's name: a key of schedule.tasks, or a Subscription the application registers.")
        var name: String

        func run() async throws {
            let configuration = try options.load()
            let outcome: JobOutcome
            if ClusterControl.isRunning(runDirectory: configuration.cluster.runDirectory) {
                outcome = try await runInService(configuration)
            } else {
                outcome = try await runHere(configuration)
            }
            switch outcome {
            case .finished: return
            case .timedOut: throw ExitCode(124)
            case .failed, .cancelled, .notRun: throw ExitCode(1)
            }
        }

        private func runInService(_ configuration: OctopusConfiguration) async throws -> JobOutcome {
            let result: RunNowResult
            do {
                result = try await ClusterControl.run(runDirectory: configuration.cluster.runDirectory, task: name)
            } catch {
                printError("octopus run: \(error)")
                throw ExitCode(1)
            }
            if let error = result.error {
                printError("octopus run: \(error)")
                throw ExitCode(result.runs.isEmpty && error.contains("no such task") ? 2 : 1)
            }
            for run in result.runs { printError("\(name) in \(run.worker): \(run.outcome)") }
            printError("\(name): \(result.outcome)")
            return result.outcome
        }

        private func runHere(_ configuration: OctopusConfiguration) async throws -> JobOutcome {
            let logging = try options.openLogging(configuration, schedules: true)
            logging.bootstrap()
            let outcome: JobOutcome
            do {
                let scheduler = try configuration.makeScheduler(logging: logging)
                outcome = try await scheduler.runNow(name)
            } catch {
                printError("octopus run: \(error)")
                try await logging.shutdown()
                throw ExitCode(2)
            }
            try await logging.shutdown()
            printError("\(name): \(outcome)")
            return outcome
        }
    }
}
