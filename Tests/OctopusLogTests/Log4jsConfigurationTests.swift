import Foundation
import Logging
import OctopusConfig
import Testing

@testable import OctopusLog

/// log4js configurations as projects write them, run as log4js 6.9 runs them: the files and names (from
/// `../shared/cases/log4js-naming.md` and log4js's documented behaviour) and the lines.
@Suite struct Log4jsConfigurationTests {
    /// A log4js configuration object (JSON, as pasted) with one appender `log` for every category.
    func configuration(_ appender: String, levels: String = "") throws -> LogConfiguration {
        try LogConfiguration(yaml: """
            {
              \(levels.isEmpty ? "" : "\"levels\": \(levels),")
              "appenders": { "log": \(appender) },
              "categories": { "default": { "appenders": ["log"], "level": "all" } }
            }
            """)
    }

    func run(_ appender: String, days: Int = 4, perDay: Int = 3) throws -> (TemporaryDirectory, [String]) {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try LogSystem(configuration(appender.replacingOccurrences(of: "DIR", with: dir.path)), clock: clock.logClock)
        runDays(system, clock, days: days, perDay: perDay)
        system.shutdownNow()
        return (dir, listing(dir))
    }

    @Test func numBackupsOnAFileAppenderWinsOverBackups() throws {
        // 3 lines of 50 bytes a day into files of at most 100 bytes: a roll every two lines.
        let (_, files) = try run(#"{ "type": "file", "filename": "DIR/app.log", "maxLogSize": 100, "backups": 5, "numBackups": 2, "layout": { "type": "messagePassThrough" } }"#)
        #expect(files == ["app.log", "app.log.1", "app.log.2"])
    }

    @Test func aFileAppenderWithADatePatternRollsByDateAsLog4jsDoes() throws {
        let (dir, files) = try run(#"{ "type": "file", "filename": "DIR/app.log", "pattern": "yyyy-MM-dd", "keepFileExt": true, "timezone": "UTC", "layout": { "type": "messagePassThrough" } }"#)
        // backups: 5 by default for a file appender (log4js passes it on as numBackups).
        #expect(files == ["app.2024-01-01.log", "app.2024-01-02.log", "app.2024-01-03.log", "app.log"])
        #expect(try contents(dir.file("app.2024-01-02.log")) == (1...3).map { "\(line(2, $0))\n" }.joined())
        let (_, always) = try run(#"{ "type": "file", "filename": "DIR/app.log", "pattern": "yyyy-MM-dd", "alwaysIncludePattern": true, "timezone": "UTC", "layout": { "type": "messagePassThrough" } }"#)
        #expect(always == ["app.log.2024-01-01", "app.log.2024-01-02", "app.log.2024-01-03", "app.log.2024-01-04"])
    }

    @Test func flagsWEmptiesTheFileAtEachStartAndOthersAreRefusedWithTheReason() throws {
        let dir = try TemporaryDirectory()
        func start(_ flags: String, _ message: String) throws {
            let system = try LogSystem(configuration(#"{ "type": "file", "filename": "\#(dir.file("app.log"))", "flags": "\#(flags)", "layout": { "type": "messagePassThrough" } }"#))
            system.logger(label: "app").info("\(message)")
            system.shutdownNow()
        }
        try start("a", "first")
        try start("a", "second")
        #expect(try contents(dir.file("app.log")) == "first\nsecond\n")
        try start("w", "fresh")
        #expect(try contents(dir.file("app.log")) == "fresh\n")
        let refused = issues(#"{ "appenders": { "log": { "type": "file", "filename": "x.log", "flags": "wx" } }, "categories": { "default": { "appenders": ["log"], "level": "info" } } }"#)
        #expect(refused.map(\.message) == [#"flags "wx" at log.appenders.log.flags is not supported; use "a" (append, the default) or "w" (emptied at each start)"#])
    }

    @Test func fileSyncIsAFileAppenderWhoseEveryEventIsWrittenBeforeTheCallReturns() throws {
        let dir = try TemporaryDirectory()
        let config = try configuration(#"{ "type": "fileSync", "filename": "\#(dir.file("audit.log"))", "maxLogSize": 10485760, "backups": 3, "layout": { "type": "messagePassThrough" } }"#)
        #expect(config.warnings.map(\.message) == [#"appender "log" at log.appenders.log is a fileSync appender: Octopus writes it as a file appender with syncLevel ALL (every event written before the call returns)"#])
        #expect(config.appenders["log"]?.syncLevel == .all)
        let system = try LogSystem(config)
        defer { system.shutdownNow() }
        system.logger(label: "audit").debug("on disk at once")
        #expect(try contents(dir.file("audit.log")) == "on disk at once\n")  // no flush, no wait
    }

    @Test func levelValuesBeyond64BitsKeepTheirOrder() throws {
        // Number.MAX_VALUE - 1, as a project's audit level has it.
        let config = try configuration(#"{ "type": "recording" }"#, levels: #"{ "AUDIT": { "value": 1.7976931348623157e308, "colour": "magenta" }, "NOTICE": { "value": 35000, "colour": "cyan" } }"#)
        let table = LogLevelTable(custom: config.levels)
        let audit = try #require(table.level(named: "AUDIT"))
        let notice = try #require(table.level(named: "NOTICE"))
        let fatal = try #require(table.level(named: "FATAL"))
        let off = try #require(table.level(named: "OFF"))
        #expect(notice.value > LogLevel.warn.value && notice.value < LogLevel.error.value)
        #expect(audit.value > fatal.value)
        #expect(audit.value < off.value, "OFF stays above every level")
        let fractional = issues(#"{ "levels": { "HALF": { "value": 1.5 } }, "appenders": { "log": { "type": "stdout" } }, "categories": { "default": { "appenders": ["log"], "level": "info" } } }"#)
        #expect(fractional.map(\.message) == ["level value 1.5 at log.levels.HALF.value is not a whole number; levels are ordered by whole numbers"])
    }

    @Test func twoDatedAppendersOnOneBaseNameAreTwoFilesWhenTheirNamesDifferAndAConflictWhenNot() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let yaml = """
            appenders:
              daily: { type: dateFile, filename: "\(dir.file("app.log"))", pattern: "yyyy-MM-dd", alwaysIncludePattern: true, timezone: UTC, layout: { type: messagePassThrough } }
              hourly: { type: dateFile, filename: "\(dir.file("app.log"))", pattern: "yyyy-MM-dd-hh", alwaysIncludePattern: true, timezone: UTC, layout: { type: messagePassThrough } }
            categories: { default: { appenders: [daily, hourly], level: info } }
            """
        let system = try LogSystem(LogConfiguration(yaml: yaml), clock: clock.logClock)
        system.logger(label: "app").info("both")
        system.shutdownNow()
        #expect(listing(dir) == ["app.log.2024-01-01", "app.log.2024-01-01-10"])
        #expect(try contents(dir.file("app.log.2024-01-01")) == "both\n")
        #expect(try contents(dir.file("app.log.2024-01-01-10")) == "both\n")

        // Without alwaysIncludePattern both write app.log and would roll it two ways: refused when loaded, before
        // any file exists (the same check runs in `config check` and before a log system opens anything).
        let other = try TemporaryDirectory()
        let conflicting = issues(yaml.replacingOccurrences(of: "alwaysIncludePattern: true, ", with: "").replacingOccurrences(of: dir.path, with: other.path))
        #expect(conflicting.map(\.path) == ["log.appenders.hourly"])
        #expect(conflicting.first?.message.contains(#"appenders "daily" and "hourly" both write \#(other.file("app.log")) but roll it differently"#) == true)
        #expect(listing(other).isEmpty)
    }

    @Test func aFilenameThatNamesADirectoryIsRefusedWhenLoaded() {
        let found = issues(#"{ "appenders": { "log": { "type": "file", "filename": "logs/app/" } }, "categories": { "default": { "appenders": ["log"], "level": "info" } } }"#)
        #expect(found.map(\.message) == [#"filename "logs/app/" at log.appenders.log.filename names a directory; name the file in it (for example "logs/app/app.log")"#])
    }

    @Test func anAppenderRefusedForItsTypeGivesNoKnockOnErrors() {
        let found = issues(#"{ "appenders": { "out": { "type": "stdout" }, "split": { "type": "multiprocess", "mode": "worker" } }, "categories": { "default": { "appenders": ["out", "split"], "level": "info" }, "db": { "appenders": ["split"], "level": "debug" } } }"#)
        #expect(found.map(\.path) == ["log.appenders.split.type"], "\(found)")
    }
}
