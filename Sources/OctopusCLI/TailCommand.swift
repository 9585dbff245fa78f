import ArgumentParser
import Foundation
import Octopus

#if canImport(Glibc)
import Glibc
#endif

extension OctopusCommand {
    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a log and its rolled files (plain and .gz) in time order; follow it with -f.",
            discussion: """
                Filters read lines back through the appender's layout when the configuration has an appender \
                writing PATH (pattern layouts with %d, %p, %c, basic, colored, json); otherwise common layouts \
                are tried. Lines a layout cannot read back (continuations of multi-line messages) go with the \
                line before them; a filter on a field the layout does not print passes every line.
                With -f it keeps following across rolls, however fast the log rolls: a rolled file is read to its \
                end before the next, and files that rolled before tail could open them are read from their rolled \
                names or archives, in order (one removed by retention first is reported on stderr).
                Examples: octopus tail -n 50 logs/app.log; octopus tail -f --level warn logs/app.log; \
                octopus tail -n all --since 2h --grep timeout logs/app.log
                Exit status: 0, 1 no such log, 2 a bad option.
                """
        )

        @OptionGroup var options: ConfigOptions

        @Flag(name: .shortAndLong, help: "Keep printing lines as they are written, across rotation (like tail -F).")
        var follow = false

        @Option(name: [.customShort("n"), .long], help: "How many of the last matching lines to print first, or \"all\".")
        var lines = "10"

        @Option(help: "Only lines at or after TIME (ISO-8601, with or without an offset, or a duration ago: 90s, 15m, 2h, 1d).")
        var since: String?

        @Option(help: "Only lines before TIME (the same forms as --since).")
        var until: String?

        @Option(help: "Only lines at this level or above: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, MARK, or a level of the configuration (any case).")
        var level: String?

        @Option(help: "Only lines of this category or below it (db matches db and db.pool).")
        var category: String?

        @Option(help: "Only lines matching this regular expression.")
        var grep: String?

        @Flag(help: "Print each line as a JSON object (time, level, category, message, line).")
        var json = false

        @Argument(help: "The log file (the configured file name of an appender).")
        var path: String

        func run() async throws {
            let (rotation, layout, levels) = appenderConfiguration()
            let limit: Int? = lines == "all" ? nil : Int(lines)
            guard lines == "all" || (limit ?? -1) >= 0 else {
                throw ValidationError("-n takes a number or \"all\", not \"\(lines)\"")
            }
            var filter: LineFilter
            do {
                filter = try LineFilter(
                    since: since.map(parseTime), until: until.map(parseTime), level: level, category: category,
                    grep: grep, levels: levels)
            } catch let error as ValidationError {
                // What is wrong, not the whole usage.
                printError("octopus tail: \(error.message)")
                throw ExitCode(2)
            }
            let output = Output(json: json, colours: !json && isatty(1) != 0, levels: levels)
            // Following starts before the files are listed, so that no roll falls between the two.
            let follower = follow ? LogFollower(path: path, rotation: rotation, fromStart: true) : nil
            follower?.report = { printError($0) }
            let set = LogFileSet(path: path, rotation: rotation)
            if set.files.isEmpty && !follow {
                printError("octopus tail: no log at \(path)")
                throw ExitCode(1)
            }
            var parser = layout.flatMap { LogLineParser(layout: $0) }
            var pending: [String] = []  // the last `limit` lines that pass
            func take(_ line: String) {
                if parser == nil, layout == nil { parser = LogLineParser.guess(from: line) }
                guard filter.passes(line, parser: parser) else { return }
                pending.append(line)
                if let limit, pending.count > limit { pending.removeFirst(pending.count - limit) }
            }
            let hot = follower?.hotPath
            // A log that had no file when following began is printed whole by the follower.
            let listed = follower?.startedEmpty == true ? [] : set.files
            for file in listed where !(follow && (file.path == hot || follower?.holds(file) == true)) {
                do {
                    try LogFileSet.lines(of: file).forEach(take)
                } catch {
                    printError("octopus tail: \(file.path): \(error)")
                }
            }
            follower?.readAvailable().forEach(take)
            for line in pending { output.print(line, parser: parser) }
            output.flush()
            guard let follower else { return }
            while !Task.isCancelled {
                for line in follower.next(waiting: 200) {
                    if parser == nil, layout == nil { parser = LogLineParser.guess(from: line) }
                    if filter.passes(line, parser: parser) { output.print(line, parser: parser) }
                }
                output.flush()
            }
        }

        /// The rotation, layout and levels of the configured appender that writes `path`, when there is one.
        func appenderConfiguration() -> (RotationOptions?, LayoutConfiguration?, LogLevelTable) {
            guard FileManager.default.fileExists(atPath: options.configDirectory),
                let configuration = try? OctopusConfiguration.load(directory: options.configDirectory, environment: options.environment)
            else { return (nil, nil, LogLevelTable()) }
            let levels = LogLevelTable(custom: configuration.log.levels)
            if let (appender, rotation) = configuration.log.appender(writing: path) { return (rotation, appender.layout, levels) }
            return (nil, nil, levels)
        }

        /// An ISO-8601 time (an offset optional: without one, local time) or a duration ago (`15m`, `1h30m`).
        func parseTime(_ text: String) throws -> LogTimestamp {
            if let seconds = Self.durationSeconds(text) {
                return LogTimestamp(seconds: LogTimestamp.now().seconds - Int64(seconds))
            }
            var normalized = text.replacingOccurrences(of: " ", with: "T")
            if normalized.count == 10 { normalized += "T00:00:00" }
            if normalized.count == 16 { normalized += ":00" }
            if let time = LogLineParser.parseTimeAllowingLocal(normalized) { return time }
            throw ValidationError("cannot read the time \"\(text)\": use 2026-11-21T09:00, 2026-11-21 09:00:00+05:30, or 15m, 2h, 1d")
        }

        static func durationSeconds(_ text: String) -> Int? {
            var total = 0
            var number = 0
            var sawDigit = false
            for c in text {
                if let d = c.wholeNumberValue {
                    number = number * 10 + d
                    sawDigit = true
                    continue
                }
                guard sawDigit else { return nil }
                switch c {
                case "s": total += number
                case "m": total += number * 60
                case "h": total += number * 3600
                case "d": total += number * 86_400
                case "w": total += number * 604_800
                default: return nil
                }
                number = 0
                sawDigit = false
            }
            return sawDigit || total == 0 ? nil : total
        }
    }
}

/// Which lines `tail` prints. A line the layout cannot read goes with the line before it.
struct LineFilter {
    let since: LogTimestamp?
    let until: LogTimestamp?
    let minimum: Int?
    let category: String?
    let expression: NSRegularExpression?
    let levels: LogLevelTable
    private var previous = true

    init(since: LogTimestamp?, until: LogTimestamp?, level: String?, category: String?, grep: String?, levels: LogLevelTable) throws {
        self.since = since
        self.until = until
        self.levels = levels
        if let level {
            guard let found = levels.level(named: level) else {
                throw ValidationError("unknown level \"\(level)\"; levels are \(levels.levels.map(\.name).joined(separator: ", "))")
            }
            self.minimum = found.value
        } else {
            self.minimum = nil
        }
        self.category = category
        do {
            self.expression = try grep.map { try NSRegularExpression(pattern: $0) }
        } catch {
            throw ValidationError("invalid regular expression \"\(grep ?? "")\": \(error.localizedDescription)")
        }
    }

    mutating func passes(_ line: String, parser: LogLineParser?) -> Bool {
        if let expression {
            let text = LogLineParser.stripColours(line)
            if expression.firstMatch(in: text, range: NSRange(text.startIndex..<text.endIndex, in: text)) == nil { return false }
        }
        guard since != nil || until != nil || minimum != nil || category != nil else { return true }
        guard let parser, let fields = parser.parse(line) else { return previous }
        var pass = true
        if let time = fields.time {
            if let since, time < since { pass = false }
            if let until, time >= until { pass = false }
        }
        if let minimum, let name = fields.level, let found = levels.level(named: name), found.value < minimum { pass = false }
        if let category, let found = fields.category, found != category, !found.hasPrefix(category + ".") { pass = false }
        previous = pass
        return pass
    }
}

/// Writes lines: coloured by level on a terminal, without colours in a pipe, or as JSON objects.
final class Output {
    let json: Bool
    let colours: Bool
    let levels: LogLevelTable
    private var buffer: [UInt8] = []

    init(json: Bool, colours: Bool, levels: LogLevelTable) {
        self.json = json
        self.colours = colours
        self.levels = levels
    }

    func print(_ line: String, parser: LogLineParser?) {
        let plain = LogLineParser.stripColours(line)
        var text: String
        if json {
            let fields = parser?.parse(line)
            var object = "{"
            if let time = fields?.time { object += "\"time\":" + ConfigValue.quoted(Self.iso(time)) + "," }
            if let level = fields?.level { object += "\"level\":" + ConfigValue.quoted(level) + "," }
            if let category = fields?.category { object += "\"category\":" + ConfigValue.quoted(category) + "," }
            if let message = fields?.message { object += "\"message\":" + ConfigValue.quoted(message) + "," }
            text = object + "\"line\":" + ConfigValue.quoted(plain) + "}"
        } else if colours {
            text = line
            if line == plain, let name = parser?.parse(line)?.level, let level = levels.level(named: name) {
                text = level.colour.start + line + LogColour.end
            }
        } else {
            text = plain
        }
        buffer.append(contentsOf: (text + "\n").utf8)
        if buffer.count > 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    /// UTC ISO-8601 with milliseconds.
    static func iso(_ time: LogTimestamp) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(time.seconds) + TimeInterval(time.nanoseconds) / 1e9))
    }
}
