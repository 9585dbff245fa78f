import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

@testable import OctopusLog

#if canImport(Glibc)
import Glibc
#endif

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let current: Mutex<LogTimestamp>

    init(_ iso: String) { current = Mutex(Self.parse(iso)) }

    var now: LogTimestamp { current.withLock { $0 } }

    func set(_ iso: String) { current.withLock { $0 = Self.parse(iso) } }

    var logClock: LogClock { .custom { self.now } }

    /// `2024-01-01T10:00:00Z` to a timestamp.
    static func parse(_ iso: String) -> LogTimestamp {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let date = formatter.date(from: iso) ?? Date(timeIntervalSince1970: 0)
        return LogTimestamp(seconds: Int64(date.timeIntervalSince1970))
    }
}

/// One appender `log` writing `path` with the message alone, on a manual clock.
func rotatingSystem(_ kind: AppenderConfiguration.Kind, clock: ManualClock) throws -> LogSystem {
    try LogSystem(
        LogConfiguration(
            appenders: ["log": AppenderConfiguration(kind, layout: .messagePassThrough)],
            categories: ["default": CategoryConfiguration(appenders: ["log"], level: .all)]
        ),
        clock: clock.logClock
    )
}

func listing(_ dir: TemporaryDirectory) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
}

/// The text of a file, decompressed when it ends in `.gz`.
func contents(_ path: String) throws -> String {
    if path.hasSuffix(".gz") { return String(decoding: try Archiver.decompress(path), as: UTF8.self) }
    return try String(contentsOfFile: path, encoding: .utf8)
}

/// A 49-character message: with its newline each line is 50 bytes.
func line(_ day: Int, _ n: Int) -> Logger.Message {
    let text = "day \(day) line \(n)"
    return "\(text)\(String(repeating: ".", count: 49 - text.count))"
}

/// Logs `perDay` lines on each of `days` days (from 2024-01-01, in UTC), moving the clock across each midnight and
/// letting the writer roll, then waits for archiving.
func runDays(_ system: LogSystem, _ clock: ManualClock, days: Int = 4, perDay: Int = 3) {
    let logger = system.logger(label: "app")
    for day in 1...days {
        clock.set("2024-01-0\(day)T10:00:00Z")
        system.checkRotation()
        for n in 1...perDay { logger.info(line(day, n)) }
        system.flush()
    }
    system.waitForArchiving()
}

@Suite struct Log4jsNamingTests {
    func dateFile(_ dir: TemporaryDirectory, _ configure: (inout DateFileAppenderOptions) -> Void) -> AppenderConfiguration.Kind {
        var options = DateFileAppenderOptions(filename: dir.file("app.log"), timeZone: .utc)
        configure(&options)
        return .dateFile(options)
    }

    func run(_ kind: (TemporaryDirectory) -> AppenderConfiguration.Kind, perDay: Int = 3) throws -> (TemporaryDirectory, [String]) {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try rotatingSystem(kind(dir), clock: clock)
        runDays(system, clock, perDay: perDay)
        system.shutdownNow()
        return (dir, listing(dir))
    }

    @Test func dateFileDefaultsKeepOneBackup() throws {
        let (dir, files) = try run { dir in dateFile(dir) { _ in } }
        #expect(files == ["app.log", "app.log.2024-01-03"])
        #expect(try contents(dir.file("app.log.2024-01-03")) == (1...3).map { "\(line(3, $0))\n" }.joined())
        #expect(try contents(dir.file("app.log")) == (1...3).map { "\(line(4, $0))\n" }.joined())
    }

    @Test func dateFileKeepFileExt() throws {
        let (_, files) = try run { dir in dateFile(dir) { $0.keepFileExt = true } }
        #expect(files == ["app.2024-01-03.log", "app.log"])
    }

    @Test func dateFileCompressFiveBackups() throws {
        let (dir, files) = try run { dir in dateFile(dir) { $0.compress = true; $0.numBackups = 5 } }
        #expect(files == ["app.log", "app.log.2024-01-01.gz", "app.log.2024-01-02.gz", "app.log.2024-01-03.gz"])
        #expect(try contents(dir.file("app.log.2024-01-02.gz")) == (1...3).map { "\(line(2, $0))\n" }.joined())
    }

    @Test func dateFileKeepFileExtAndCompress() throws {
        let (_, files) = try run { dir in dateFile(dir) { $0.keepFileExt = true; $0.compress = true; $0.numBackups = 5 } }
        #expect(files == ["app.2024-01-01.log.gz", "app.2024-01-02.log.gz", "app.2024-01-03.log.gz", "app.log"])
    }

    @Test func dateFileAlwaysIncludePatternHotFileIsToday() throws {
        let (dir, files) = try run { dir in dateFile(dir) { $0.alwaysIncludePattern = true; $0.numBackups = 5 } }
        #expect(files == ["app.log.2024-01-01", "app.log.2024-01-02", "app.log.2024-01-03", "app.log.2024-01-04"])
        #expect(try contents(dir.file("app.log.2024-01-04")) == (1...3).map { "\(line(4, $0))\n" }.joined())
    }

    @Test func dateFileKeepFileExtWithUnderscore() throws {
        let (_, files) = try run { dir in dateFile(dir) { $0.keepFileExt = true; $0.fileNameSep = "_"; $0.numBackups = 5 } }
        #expect(files == ["app.log", "app_2024-01-01.log", "app_2024-01-02.log", "app_2024-01-03.log"])
    }

    @Test func dateFileWithMaxLogSizeIndexesWithinADayNewestFirst() throws {
        // 20 lines of 50 bytes a day into 300-byte files: pieces of 6, 6, 6 and 2 lines.
        let (dir, files) = try run(
            { dir in dateFile(dir) { $0.maxLogSize = 300; $0.compress = true; $0.numBackups = 100 } }, perDay: 20)
        var expected = ["app.log"]
        for day in 1...3 { expected += (1...4).map { "app.log.2024-01-0\(day).\($0).gz" } }
        expected += (1...3).map { "app.log.2024-01-04.\($0).gz" }
        #expect(files == expected.sorted())
        // .1 is the newest piece of a day: reading .4, .3, .2, .1 gives the day in order.
        let day2 = try (1...4).reversed().map { try contents(dir.file("app.log.2024-01-02.\($0).gz")) }.joined()
        #expect(day2 == (1...20).map { "\(line(2, $0))\n" }.joined())
        #expect(try contents(dir.file("app.log.2024-01-02.4.gz")).split(separator: "\n").count == 6)
    }

    @Test func fileMaxLogSizeWithThreeBackups() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try rotatingSystem(.file(FileAppenderOptions(filename: dir.file("app.log"), maxLogSize: 300, backups: 3)), clock: clock)
        let logger = system.logger(label: "app")
        for n in 1...30 { logger.info(line(1, n)) }  // five files of six lines: four rolls
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", "app.log.1", "app.log.2", "app.log.3"])
        #expect(try contents(dir.file("app.log.1")) == (19...24).map { "\(line(1, $0))\n" }.joined())
        #expect(try contents(dir.file("app.log")) == (25...30).map { "\(line(1, $0))\n" }.joined())
        #expect(system.counters(for: "log")?.rolls == 4)
    }

    @Test func fileSizeInKilobytesCompressedKeepingTheExtension() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let options = FileAppenderOptions(filename: dir.file("app.log"), maxLogSize: LogConfiguration.parseSize("1K"), compress: true, keepFileExt: true)
        let system = try rotatingSystem(.file(options), clock: clock)
        let logger = system.logger(label: "app")
        for n in 1...70 { logger.info(line(1, n)) }  // 20 lines per 1 KiB file: three rolls
        system.shutdownNow()
        #expect(listing(dir) == ["app.1.log.gz", "app.2.log.gz", "app.3.log.gz", "app.log"])
        #expect(try contents(dir.file("app.3.log.gz")) == (1...20).map { "\(line(1, $0))\n" }.joined())
        #expect(system.counters(for: "log")?.archived == 3)
    }

    @Test func aLeadingSeparatorInThePatternDoublesIt() throws {
        let (_, files) = try run { dir in dateFile(dir) { $0.pattern = ".yyyy-MM-dd" } }
        #expect(files == ["app.log", "app.log..2024-01-03"])
    }

    @Test func hourlyPattern() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T10:15:00Z")
        let system = try rotatingSystem(
            .dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), pattern: "yyyy-MM-dd-hh", numBackups: 10, timeZone: .utc)), clock: clock)
        let logger = system.logger(label: "app")
        for hour in ["10", "11", "13"] {
            clock.set("2024-01-01T\(hour):15:00Z")
            system.checkRotation()
            logger.info("at \(hour)")
            system.flush()
        }
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", "app.log.2024-01-01-10", "app.log.2024-01-01-11"])
    }

    @Test func periodsFollowTheConfiguredZone() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T20:00:00Z")  // 2024-01-02 05:00 in Tokyo
        let system = try rotatingSystem(
            .dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), timeZone: .named("Asia/Tokyo"))), clock: clock)
        system.logger(label: "app").info("tokyo morning")
        system.flush()
        clock.set("2024-01-02T16:00:00Z")  // 2024-01-03 01:00 in Tokyo
        system.checkRotation()
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", "app.log.2024-01-02"])
    }
}

@Suite struct RotationBehaviourTests {
    @Test func rollsAtTheBoundaryWithoutAnyWrite() throws {
        let dir = try TemporaryDirectory()
        let clock = ManualClock("2024-01-01T23:59:00Z")
        let system = try rotatingSystem(.dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), timeZone: .utc)), clock: clock)
        defer { system.shutdownNow() }
        system.logger(label: "app").info("late on the first")
        system.flush()
        clock.set("2024-01-02T00:00:01Z")
        system.checkRotation()  // no line logged after midnight
        system.waitForArchiving()
        #expect(listing(dir) == ["app.log", "app.log.2024-01-01"])
        #expect(try contents(dir.file("app.log.2024-01-01")) == "late on the first\n")
        #expect(try contents(dir.file("app.log")) == "")
    }

    @Test func theWritersOwnTimerRollsAtTheBoundary() async throws {
        let dir = try TemporaryDirectory()
        // A real clock, a per-second pattern: the writer must roll by itself with nothing written after.
        let system = try LogSystem(
            LogConfiguration(
                appenders: ["log": AppenderConfiguration(
                    .dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), pattern: "yyyy-MM-dd-hh-mm-ss", numBackups: 10, timeZone: .utc)),
                    layout: .messagePassThrough)],
                categories: ["default": CategoryConfiguration(appenders: ["log"], level: .all)]
            ))
        defer { system.shutdownNow() }
        system.logger(label: "app").info("one")
        system.flush()
        await eventually("the file to roll with nothing written after") {
            system.waitForArchiving()
            return listing(dir).contains { $0.hasPrefix("app.log.") }
        }
    }

    @Test func aRestartRollsYesterdaysFileToYesterdaysName() throws {
        let dir = try TemporaryDirectory()
        try "from yesterday\n".write(toFile: dir.file("app.log"), atomically: true, encoding: .utf8)
        let yesterday = Date().addingTimeInterval(-86_400)
        try FileManager.default.setAttributes([.modificationDate: yesterday], ofItemAtPath: dir.file("app.log"))
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        let name = "app.log." + formatter.string(from: yesterday)
        let system = try LogSystem(
            LogConfiguration(
                appenders: ["log": AppenderConfiguration(.dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), timeZone: .utc)), layout: .messagePassThrough)],
                categories: ["default": CategoryConfiguration(appenders: ["log"], level: .all)]
            ))
        system.logger(label: "app").info("today")
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", name])
        #expect(try contents(dir.file(name)) == "from yesterday\n")
        #expect(try contents(dir.file("app.log")) == "today\n")
    }

    @Test func anExistingTargetIsNeverOverwritten() throws {
        let dir = try TemporaryDirectory()
        try "precious\n".write(toFile: dir.file("app.log.2024-01-01"), atomically: true, encoding: .utf8)
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try rotatingSystem(.dateFile(DateFileAppenderOptions(filename: dir.file("app.log"), numBackups: 5, timeZone: .utc)), clock: clock)
        system.logger(label: "app").info("new")
        system.flush()
        clock.set("2024-01-02T10:00:00Z")
        system.checkRotation()
        system.shutdownNow()
        #expect(try contents(dir.file("app.log.2024-01-01")) == "precious\n")
        #expect(try contents(dir.file("app.log.2024-01-01.1")) == "new\n")
    }

    @Test func retentionByAgeAndTotalSizeTouchesOnlyThisAppendersFiles() throws {
        let dir = try TemporaryDirectory()
        let others = ["other.log.1", "app.log.bak", "app.logger.1", "app.log.2024-13-99x", "notes.txt", "app.log.1"]
        for name in others { try "keep\n".write(toFile: dir.file(name), atomically: true, encoding: .utf8) }
        // Old rolled files of this appender; ages count on the system's clock (here the manual one).
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let now = Date(timeIntervalSince1970: TimeInterval(clock.now.seconds))
        for day in 1...5 {
            let name = dir.file("app.log.2023-12-0\(day)")
            try String(repeating: "x", count: 1000).write(toFile: name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-Double(40 - day) * 86_400)], ofItemAtPath: name)
        }
        var options = DateFileAppenderOptions(filename: dir.file("app.log"), numBackups: 100, timeZone: .utc)
        options.maxDays = 36  // 2023-12-01 … 12-04 are 36 to 39 days old
        let system = try rotatingSystem(.dateFile(options), clock: clock)
        system.waitForArchiving()
        system.shutdownNow()
        let files = Set(listing(dir))
        #expect(files.isSuperset(of: others))
        #expect(!files.contains("app.log.2023-12-01") && !files.contains("app.log.2023-12-03"))
        #expect(files.contains("app.log.2023-12-05"))

        // maxTotalSize: the newest files that fit stay.
        var sized = DateFileAppenderOptions(filename: dir.file("app.log"), numBackups: 100, timeZone: .utc)
        sized.maxTotalSize = 1500
        for day in 1...4 { try String(repeating: "y", count: 1000).write(toFile: dir.file("app.log.2023-11-0\(day)"), atomically: true, encoding: .utf8) }
        let second = try rotatingSystem(.dateFile(sized), clock: clock)
        second.waitForArchiving()
        second.shutdownNow()
        let after = Set(listing(dir))
        #expect(after.contains("app.log.2023-12-05"))  // the newest backup: 1000 bytes
        #expect(!after.contains { $0.hasPrefix("app.log.2023-11") })
        #expect(after.isSuperset(of: others))
    }

    @Test func startFinishesWhatACrashInterrupted() throws {
        let dir = try TemporaryDirectory()
        try "half an archive".write(toFile: dir.file("app.log.1.gz.tmp-999"), atomically: true, encoding: .utf8)
        try "rolled, not yet named\n".write(toFile: dir.file("app.log.rolling-999-1"), atomically: true, encoding: .utf8)
        // Killed between an archive's rename and its source's removal: both are there.
        try "second\n".write(toFile: dir.file("app.log.1"), atomically: true, encoding: .utf8)
        try LogArchive.compress(dir.file("app.log.1"))
        try "second\n".write(toFile: dir.file("app.log.1"), atomically: true, encoding: .utf8)
        let clock = ManualClock("2024-01-01T10:00:00Z")
        let system = try rotatingSystem(
            .file(FileAppenderOptions(filename: dir.file("app.log"), maxLogSize: 1000, compress: true)), clock: clock)
        system.waitForArchiving()
        system.shutdownNow()
        #expect(listing(dir) == ["app.log", "app.log.1.gz", "app.log.2.gz"])
        #expect(try contents(dir.file("app.log.1.gz")) == "rolled, not yet named\n")
        #expect(try contents(dir.file("app.log.2.gz")) == "second\n")
    }

    @Test func eightThreadsAcrossTwentySizeRollsWithCompression() async throws {
        let dir = try TemporaryDirectory()
        let system = try LogSystem(
            LogConfiguration(
                appenders: ["log": AppenderConfiguration(
                    .file(FileAppenderOptions(filename: dir.file("app.log"), maxLogSize: 20_000, backups: 1000, compress: true)),
                    layout: .messagePassThrough, writer: WriterOptions(bufferSize: 16 * 1024))],
                categories: ["default": CategoryConfiguration(appenders: ["log"], level: .all)]
            ))
        let threads = 8
        let perThread = 2_500  // 20,000 lines of ~30 bytes: 600 KB, about 30 rolls of 20 KB …
        await inParallel(threads) { t in
            let logger = system.logger(label: "w\(t)")
            for i in 0..<perThread { logger.info("t=\(t) i=\(i) \(String(repeating: "z", count: 8 + (i % 7)))") }
        }
        system.rollFiles()  // … and the ones asked for
        try await system.shutdown()
        let counters = try #require(system.counters(for: "log"))
        #expect(counters.rolls >= 20)
        #expect(counters.archiveErrors == 0)
        // Oldest first: the highest index is the oldest archive, the hot file the newest.
        let archives = listing(dir).filter { $0.hasSuffix(".gz") }
        #expect(archives.count == counters.rolls)
        #expect(!listing(dir).contains { $0.contains("rolling") || $0.contains(".tmp") })
        let ordered = archives.sorted { Int($0.split(separator: ".")[2])! > Int($1.split(separator: ".")[2])! }
        var text = try ordered.map { try contents(dir.file($0)) }.joined()
        text += try contents(dir.file("app.log"))
        var next = [Int](repeating: 0, count: threads)
        var problems = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let t = Int(parts[0].dropFirst(2)), let i = Int(parts[1].dropFirst(2)), t < threads, next[t] == i,
                parts[2] == String(repeating: "z", count: 8 + (i % 7))
            else {
                problems += 1
                continue
            }
            next[t] += 1
        }
        #expect(problems == 0)
        #expect(next == [Int](repeating: perThread, count: threads))
    }
}
