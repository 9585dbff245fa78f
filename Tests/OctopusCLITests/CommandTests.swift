import Foundation
import Logging
import OctopusLog
import Testing
import TestSupport

/// The `octopus` executable built beside the test bundle.
let octopusBinary: URL = {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("octopus")
}()

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

struct Outcome: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `octopus` with `arguments` in `directory` and waits for it (on a thread of its own: see ``onThread(_:)``).
func octopus(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) async throws -> Outcome {
    try await onThread { try runOctopus(arguments, in: directory, environment: environment) }
}

private func runOctopus(_ arguments: [String], in directory: String?, environment: [String: String]) throws -> Outcome {
    let process = Process()
    process.executableURL = octopusBinary
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Outcome(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}

/// `octopus start` in `directory`, running in the background (its output discarded); the caller stops it.
func startOctopus(in directory: String) throws -> Process {
    let process = Process()
    process.executableURL = octopusBinary
    process.arguments = ["start"]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

final class ScratchDirectory: @unchecked Sendable {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "octopus-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path + "/config", withIntermediateDirectories: true)
    }
    func config(_ name: String, _ text: String) throws {
        try text.write(toFile: path + "/config/" + name, atomically: true, encoding: .utf8)
    }
    func read(_ name: String) -> String {
        (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let fileConfig = """
    log:
      appenders:
        file: { type: file, filename: logs/app.log, layout: { type: pattern, pattern: "[%p] %c - %m%X" } }
        errors: { type: logLevelFilter, appender: errorFile, level: ERROR }
        errorFile: { type: file, filename: logs/common-error.log, layout: { type: pattern, pattern: "[%p] %c - %m" } }
      categories:
        default: { appenders: [file, errors], level: INFO }
    """

@Suite struct CommandTests {
    @Test func configCheckPrintsTheResolvedRepositoryDefault() async throws {
        let outcome = try await octopus(["config", "check"], in: repositoryRoot.path)
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains("\"common-error.log\"") || outcome.stdout.contains("logs/common-error.log"))
        #expect(outcome.stderr.contains("configuration OK (environment \"local\""))
    }

    @Test func configCheckReportsEveryErrorWithItsKeyPathAndExits2() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", """
            log:
              appenders:
                app: { type: file, filename: a.log, "maxLogSize ": 10, mode: "999" }
              categories:
                default: { appenders: [app, ghost], level: loud }
            schedulee: {}
            """)
        let outcome = try await octopus(["config", "check", "--config-dir", dir.path + "/config"])
        #expect(outcome.status == 2)
        #expect(outcome.stdout.isEmpty)
        for fragment in [
            #"unknown key "maxLogSize " at log.appenders.app; did you mean "maxLogSize"?"#,
            "invalid file mode at log.appenders.app.mode",
            #"names appender "ghost", which is not defined at log.categories.default.appenders[1]"#,
            #"unknown level "loud" at log.categories.default.level"#,
            #"unknown key "schedulee" at the top level"#,
            "config.default.yaml:",
        ] {
            #expect(outcome.stderr.contains(fragment), "missing: \(fragment)\n\(outcome.stderr)")
        }
    }

    @Test func configCheckUsesTheEnvironmentOverlay() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", fileConfig)
        try dir.config("config.prod.yaml", "log:\n  categories:\n    default: { level: WARN }\n")
        let byFlag = try await octopus(["config", "check", "--env", "prod"], in: dir.path)
        #expect(byFlag.status == 0)
        #expect(byFlag.stdout.contains("\"WARN\""))
        let byVariable = try await octopus(["config", "check"], in: dir.path, environment: ["OCTOPUS_ENV": "prod"])
        #expect(byVariable.stdout.contains("\"WARN\""))
        let local = try await octopus(["config", "check"], in: dir.path, environment: ["OCTOPUS_ENV": ""])
        #expect(local.stdout.contains("\"INFO\"") && !local.stdout.contains("\"WARN\""))
    }

    @Test func configCheckWarnsAboutDeprecatedKeysButPasses() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", """
            log:
              appenders: { app: { type: dateFile, filename: logs/app.log, daysToKeep: 3 } }
              categories: { default: { appenders: [app], level: INFO } }
            """)
        let outcome = try await octopus(["config", "check"], in: dir.path)
        #expect(outcome.status == 0)
        #expect(outcome.stderr.contains(#"warning: "daysToKeep" at log.appenders.app.daysToKeep is deprecated"#))
    }

    @Test func logWritesOneEventThroughTheConfiguredAppenders() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", fileConfig)
        #expect(try await octopus(["log", "--category", "db.pool", "--level", "error", "pool", "exhausted"], in: dir.path).status == 0)
        #expect(try await octopus(["log", "plain", "info"], in: dir.path).status == 0)
        #expect(try await octopus(["log", "--level", "debug", "below the level"], in: dir.path).status == 0)
        #expect(dir.read("logs/app.log") == "[ERROR] db.pool - pool exhausted\n[INFO] default - plain info\n")
        #expect(dir.read("logs/common-error.log") == "[ERROR] db.pool - pool exhausted\n")
    }

    @Test func logRefusesAnUnknownLevel() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", fileConfig)
        let outcome = try await octopus(["log", "--level", "LOUD", "x"], in: dir.path)
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains("unknown level \"LOUD\""))
    }

    @Test func startRunsUntilSIGTERMThenFlushesAndExits0() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", fileConfig)
        let process = try startOctopus(in: dir.path)
        // Wait (bounded) for the start line, then stop the service the way a supervisor does.
        var started = false
        for _ in 0..<300 where !started {
            started = dir.read("logs/app.log").contains("cluster ready in")
            if !started { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(started)
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let log = dir.read("logs/app.log")
        #expect(log.contains("[INFO] octopus.master - octopus starting: "))
        #expect(log.contains(" env local, pid \(process.processIdentifier), run directory run role=master\n"))
        #expect(log.hasSuffix("[INFO] octopus.master - master exiting with status 0 role=master\n"))
    }

    @Test func startRefusesABadConfigurationAndStartsNothing() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", "log:\n  appenders: {}\n  categories: {}\n")
        let outcome = try await octopus(["start"], in: dir.path)
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains("missing category \"default\""))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/logs"))
    }

    @Test(arguments: [["--help"], ["start", "--help"], ["config", "check", "--help"], ["log", "--help"]])
    func everyVerbHasHelp(arguments: [String]) async throws {
        let outcome = try await octopus(arguments)
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains("USAGE:"))
    }
}

/// The command as a new user meets it: --version, what each verb's help says, and errors that say what is wrong.
@Suite struct CommandHelpTests {
    @Test func versionPrintsTheVersion() async throws {
        let outcome = try await octopus(["--version"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test func everyVerbsHelpSaysHowItExits() async throws {
        for verb in ["start", "stop", "status", "config check", "log", "tail", "run", "cron", "archive"] {
            let outcome = try await octopus(verb.split(separator: " ").map(String.init) + ["--help"])
            #expect(outcome.status == 0, "\(verb)")
            #expect(outcome.stdout.lowercased().contains("exit status") || outcome.stdout.contains("exits"), "\(verb) --help says nothing of how it exits:\n\(outcome.stdout)")
        }
        let start = try await octopus(["start", "--help"]).stdout
        for needed in ["config/", "SIGTERM", "octopus.pid", "logs/octopus.stderr.log", "run/"] {
            #expect(start.contains(needed), "start --help lacks \(needed)")
        }
        #expect(try await octopus(["--help"]).stdout.contains("config check"))
        let cron = try await octopus(["cron", "--help"]).stdout
        #expect(cron.components(separatedBy: "default: local").count == 2 && !cron.contains("local (default"), "the default zone is said once:\n\(cron)")
    }

    @Test func aMissingConfigDirectoryIsNotAnInvalidConfiguration() async throws {
        let dir = NSTemporaryDirectory() + "octopus-noconfig-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outcome = try await octopus(["start"], in: dir)
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains(#"no configuration directory "config" in"#), "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("invalid configuration"))
    }

    @Test func aBadLevelForTailSaysSoWithoutTheWholeUsage() async throws {
        let (dir, system, file) = try tailFixture(sizeRolled)
        system.logger(label: "app").info("one")
        system.shutdownNow()
        let outcome = try await octopus(["tail", "--level", "LOUD", file], in: dir.path)
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains(#"unknown level "LOUD"; levels are ALL, TRACE, DEBUG, INFO, WARN, ERROR, FATAL, MARK, OFF"#))
        #expect(!outcome.stderr.contains("USAGE"))
    }

    @Test func logAndConfigCheckOpenNoScheduleLog() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.json", #"{ "log": { "appenders": { "app": { "type": "file", "filename": "logs/app.log" } }, "categories": { "default": { "appenders": ["app"], "level": "info" } } } }"#)
        #expect(try await octopus(["config", "check"], in: dir.path).status == 0)
        #expect(try await octopus(["log", "hello"], in: dir.path).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/logs") == ["app.log"])
    }
}
