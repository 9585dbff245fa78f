import Foundation
import Logging
import OctopusConfig
import Testing

@testable import OctopusLog

/// log4js's `multiFile` appender as its documentation and its own tests describe it: one file per value of the
/// property, `path.join(base, value + extension)`, events without the value ignored, idle files closed after
/// `timeout` and reopened, each file rolled with the `file` appender's options.
@Suite struct MultiFileAppenderTests {
    func system(_ appender: String, clock: LogClock = .system) throws -> LogSystem {
        try LogSystem(LogConfiguration(yaml: """
            {
              "appenders": { "multi": \(appender) },
              "categories": { "default": { "appenders": ["multi"], "level": "debug" } }
            }
            """), clock: clock)
    }

    @Test func oneFilePerCategoryAsInLog4jsDocumentation() throws {
        let dir = try TemporaryDirectory()
        // log4js's documented example, with the base in a temporary directory.
        let system = try system(#"{ "type": "multiFile", "base": "\#(dir.path)/logs/", "property": "categoryName", "extension": ".log", "layout": { "type": "messagePassThrough" } }"#)
        system.logger(label: "A").info("A1")
        system.logger(label: "B").info("B1")
        system.logger(label: "A").info("A2")
        system.logger(label: "db.pool").info("P1")
        system.shutdownNow()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("logs")).sorted() == ["A.log", "B.log", "db.pool.log"])
        #expect(try contents(dir.file("logs/A.log")) == "A1\nA2\n")
        #expect(try contents(dir.file("logs/B.log")) == "B1\n")
        #expect(try contents(dir.file("logs/db.pool.log")) == "P1\n")
        #expect(system.counters(for: "multi")?.lines == 4)
    }

    @Test func oneFilePerMetadataValueAndEventsWithoutItAreIgnored() throws {
        let dir = try TemporaryDirectory()
        // log4js: `logger.addContext("userID", …)`; in Octopus the value is the event's metadata (the logger's, the
        // provider's or the call's).
        let system = try system(#"{ "type": "multiFile", "base": "\#(dir.path)", "property": "userID", "extension": ".log", "layout": { "type": "pattern", "pattern": "%p %m" } }"#)
        var logger = system.logger(label: "app")
        logger[metadataKey: "userID"] = "alice"
        logger.info("from alice")
        logger.warning("about bob", metadata: ["userID": "bob"])
        system.logger(label: "app").info("nobody's")  // no userID: log4js writes it nowhere, and so does Octopus
        system.shutdownNow()
        #expect(listing(dir) == ["alice.log", "bob.log"])
        #expect(try contents(dir.file("alice.log")) == "INFO from alice\n")
        #expect(try contents(dir.file("bob.log")) == "WARN about bob\n")
    }

    @Test func aValueNeverNamesAFileOutsideBase() throws {
        let dir = try TemporaryDirectory()
        let base = dir.file("users")
        let system = try system(#"{ "type": "multiFile", "base": "\#(base)", "property": "user", "extension": ".log", "layout": { "type": "messagePassThrough" } }"#)
        let logger = system.logger(label: "app")
        logger.info("climb", metadata: ["user": "../../etc/passwd"])
        logger.info("hidden", metadata: ["user": ".profile"])
        logger.info("percent", metadata: ["user": "100%"])
        system.shutdownNow()
        #expect(listing(dir) == ["users"])
        let files = try FileManager.default.contentsOfDirectory(atPath: base).sorted()
        #expect(files == ["%2E.%2F..%2Fetc%2Fpasswd.log", "%2Eprofile.log", "100%25.log"])
        let options = MultiFileAppenderOptions(base: base, property: "user", fileExtension: ".log")
        for value in ["../../etc/passwd", ".profile", "100%", "plain", "a%2Fb"] {
            #expect(options.value(forPath: options.path(for: value)) == value, "the name is read back into its value")
        }
        #expect(options.value(forPath: base + "/x.txt") == nil)
        #expect(options.value(forPath: base + "/sub/x.log") == nil)
    }

    @Test func idleFilesAreClosedAfterTimeoutAndReopenedAtTheNextEvent() throws {
        let dir = try TemporaryDirectory()
        let system = try system(#"{ "type": "multiFile", "base": "\#(dir.path)", "property": "categoryName", "extension": ".log", "timeout": 20, "flags": "w", "layout": { "type": "messagePassThrough" } }"#)
        defer { system.shutdownNow() }
        let appender = try #require(system.appender(named: "multi") as? MultiFileAppender)
        system.logger(label: "quiet").info("first")
        system.logger(label: "busy").info("one")
        // Wait (without a deadline that could fail a slow run) until the idle files are closed. (How many are open
        // before that is not asserted: on a loaded machine both may have passed their 20 ms already.)
        while appender.openFileCount > 0 { usleep(5_000) }
        #expect(try contents(dir.file("quiet.log")) == "first\n", "a closed file holds every line")
        system.logger(label: "quiet").info("second")
        system.flush()
        // Reopened for appending: flags w empties a file once per start, not at each reopen.
        #expect(try contents(dir.file("quiet.log")) == "first\nsecond\n")
        #expect(appender.counters.lines == 3)
    }

    @Test func eachFileRollsWithTheFileAppendersOptions() throws {
        let dir = try TemporaryDirectory()
        // 50-byte lines into files of at most 100 bytes: a roll every two lines, 2 backups, compressed.
        let system = try system(#"{ "type": "multiFile", "base": "\#(dir.path)", "property": "categoryName", "extension": ".log", "maxLogSize": 100, "backups": 2, "compress": true, "layout": { "type": "messagePassThrough" } }"#)
        for n in 1...5 {
            system.logger(label: "a").info(line(1, n))
            system.logger(label: "b").info(line(2, n))
        }
        system.flush()
        system.waitForArchiving()
        system.shutdownNow()
        #expect(listing(dir) == ["a.log", "a.log.1.gz", "a.log.2.gz", "b.log", "b.log.1.gz", "b.log.2.gz"])
        for (name, day) in [("a", 1), ("b", 2)] {
            #expect(try contents(dir.file("\(name).log.2.gz")) == "\(line(day, 1))\n\(line(day, 2))\n")
            #expect(try contents(dir.file("\(name).log.1.gz")) == "\(line(day, 3))\n\(line(day, 4))\n")
            #expect(try contents(dir.file("\(name).log")) == "\(line(day, 5))\n")
        }
        #expect(system.counters(for: "multi")?.rolls == 4)
    }

    @Test func datePatternsRollEachFileByDate() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try system(#"{ "type": "multiFile", "base": "\#(dir.path)", "property": "categoryName", "extension": ".log", "pattern": "yyyy-MM-dd", "timezone": "UTC", "layout": { "type": "messagePassThrough" } }"#, clock: clock.logClock)
        runDays(system, clock, days: 2, perDay: 1)
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", "app.log.2024-01-01"])
        #expect(try contents(dir.file("app.log.2024-01-01")) == "\(line(1, 1))\n")
    }

    @Test func configurationErrorsSayWhatAndWhere() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("plain")
        FileManager.default.createFile(atPath: file, contents: Data())
        func check(_ appender: String) -> [String] {
            issues(#"{ "appenders": { "multi": \#(appender) }, "categories": { "default": { "appenders": ["multi"], "level": "info" } } }"#).map(\.message)
        }
        #expect(check(#"{ "type": "multiFile", "base": "logs", "property": "categoryName" }"#) == [#"missing key "extension" at log.appenders.multi (log4js would name the files <value>undefined); use ".log", or "" for none"#])
        #expect(check(#"{ "type": "multiFile", "base": "\#(file)", "property": "categoryName", "extension": ".log" }"#) == [#"base "\#(file)" at log.appenders.multi.base is a file; base names the directory the files are written in"#])
        #expect(check(#"{ "type": "multiFile", "base": "logs", "property": "categoryName", "extension": ".log", "filename": "x.log" }"#).first?.contains(#"unknown key "filename""#) == true)
        #expect(check(#"{ "type": "multiFile", "base": "logs", "property": "categoryName", "extension": ".log", "timeout": 0 }"#) == ["timeout must be 1 or more at log.appenders.multi.timeout"])
    }

    @Test func tailFindsTheAppenderOfAFileAMultiFileAppenderWrites() throws {
        let config = try LogConfiguration(yaml: #"{ "appenders": { "multi": { "type": "multiFile", "base": "logs/users/", "property": "user", "extension": ".log", "maxLogSize": "1M", "compress": true } }, "categories": { "default": { "appenders": ["multi"], "level": "info" } } }"#)
        let found = try #require(config.appender(writing: "logs/users/alice.log"))
        #expect(found.rotation?.maxLogSize == 1 << 20)
        #expect(found.rotation?.compress == true)
        #expect(config.appender(writing: "./logs/users/../users/bob.log") != nil)
        #expect(config.appender(writing: "logs/users/alice.txt") == nil)
        #expect(config.appender(writing: "logs/alice.log") == nil)
    }
}
