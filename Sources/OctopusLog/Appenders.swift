import Foundation
import Synchronization

/// Something that takes log records: writes them (stdout, stderr, files), keeps them (recording), or passes some
/// on to another appender (the filters).
///
/// `append` is called on the logging thread for every event that passes the category's level; it must be cheap
/// and must not block for long (the writers block only when their buffer is full and the policy is `block`).
public protocol LogAppender: AnyObject, Sendable {
    func append(_ record: borrowing LogRecord)
    /// Returns once everything appended before is written.
    func flush()
    /// Writes what is buffered and releases files. Later records are counted as drops.
    func shutdown()
    /// What the appender has done so far.
    var counters: AppenderCounters { get }
}

extension LogAppender {
    public func flush() {}
    public func shutdown() {}
    public var counters: AppenderCounters { AppenderCounters() }
}

/// `stdout`, `stderr`, `console` and `file`: renders each record with its layout on the caller's thread and hands
/// the line to the target's ``LogWriter``, or, for a line whose program reads only the event's time and message,
/// hands those to the writer, which renders the line (see ``RawProgram/format``).
///
/// Appenders that write the same target share its writer, and so its counters.
public final class WriterAppender: LogAppender {
    public let layout: any LogLayout
    let writer: LogWriter
    let syncThreshold: Int

    /// The pattern that renders events from their parts: the layout itself when it is a pattern that reads only the
    /// event, or the pattern a ``PatternEquivalentLayout`` equals.
    let partsLayout: PatternLayout?
    /// Whether the layout prints the event's metadata and error after what ``partsLayout`` renders (`basic`,
    /// `coloured`).
    let printsMetadataSuffix: Bool
    /// Whether ``partsLayout`` prints metadata (`%X`).
    let partsLayoutReadsMetadata: Bool
    /// Whether the handler must merge the event's metadata (and take its error) for this appender.
    var needsEventSuffix: Bool { printsMetadataSuffix || partsLayoutReadsMetadata }

    init(layout: any LogLayout, writer: LogWriter, syncLevel: LogLevel?) {
        self.layout = layout
        self.writer = writer
        self.syncThreshold = syncLevel?.value ?? Int.max
        if let pattern = layout as? PatternLayout {
            self.partsLayout = pattern.readsOnlyTheEvent ? pattern : nil
            self.printsMetadataSuffix = false
        } else if let equivalent = layout as? any PatternEquivalentLayout {
            self.partsLayout = equivalent.equivalentPattern
            self.printsMetadataSuffix = equivalent.printsMetadataSuffix
        } else {
            self.partsLayout = nil
            self.printsMetadataSuffix = false
        }
        self.partsLayoutReadsMetadata = partsLayout?.readsMetadata ?? false
    }

    public func append(_ record: borrowing LogRecord) {
        var line = LogBuffer.acquireThreadBuffer()
        layout.render(record, into: &line)
        line.append(UInt8(ascii: "\n"))
        submit(line, levelValue: record.level.value)
    }

    /// Appends an event from its parts with a program of ``partsLayout`` for its category and level (see
    /// ``PatternLayout/Program``; the program ends the line), and the metadata and error in `suffix` when the layout
    /// prints them.
    func append(_ parts: borrowing EventParts, program: RawProgram, suffix: EventSuffix?) {
        if program.format != 0 && suffix == nil {
            // The writer renders the line: the caller only copies the timestamp and the message.
            writer.submitDeferred(
                format: program.format, timestamp: parts.timestamp, message: parts.message,
                durable: parts.levelValue >= syncThreshold)
            return
        }
        var line = LogBuffer.acquireThreadBuffer()
        if partsLayoutReadsMetadata, let suffix {
            partsLayout?.render(parts, program: program, metadata: suffix.metadata, into: &line)
        } else {
            partsLayout?.render(parts, program: program, into: &line)
        }
        if printsMetadataSuffix, let suffix {
            line.truncate(to: line.count - 1)
            appendMetadataSuffix(suffix.metadata, error: suffix.error, into: &line)
            line.append(UInt8(ascii: "\n"))
        }
        submit(line, levelValue: parts.levelValue)
    }

    @inline(__always)
    private func submit(_ line: consuming LogBuffer, levelValue: Int) {
        writer.submit(line.bytes(), durable: levelValue >= syncThreshold)
        line.releaseThreadBuffer()
    }

    public func flush() { writer.flush() }
    public func shutdown() { writer.shutdown() }
    public var counters: AppenderCounters { writer.currentCounters }

    /// Closes and reopens the file (after an external tool moved it away). No effect on stdout and stderr.
    public func reopen() { writer.reopen() }

    /// The path or stream name this appender writes.
    public var targetName: String { writer.target.name }
}

/// log4js's `recording` appender: keeps records (and, with a layout, their rendered lines) in memory, for tests —
/// the project's and its users'.
public final class RecordingAppender: LogAppender {
    private struct State {
        var records: [LogRecord] = []
        var lines: [String] = []
        var counters = AppenderCounters()
    }
    private let state = Mutex(State())
    public let layout: (any LogLayout)?
    /// The most records kept; older ones are discarded first.
    public let limit: Int

    public init(layout: (any LogLayout)? = nil, limit: Int = 100_000) {
        self.layout = layout
        self.limit = max(1, limit)
    }

    public func append(_ record: borrowing LogRecord) {
        let line = layout?.string(for: record)
        state.withLock { state in
            if state.records.count >= limit {
                state.records.removeFirst()
                if !state.lines.isEmpty { state.lines.removeFirst() }
            }
            state.records.append(copy record)
            if let line { state.lines.append(line) }
            state.counters.lines += 1
            state.counters.bytes += line?.utf8.count ?? 0
        }
    }

    /// The records kept, oldest first.
    public var records: [LogRecord] { state.withLock { $0.records } }
    /// The rendered lines (when made with a layout), oldest first.
    public var lines: [String] { state.withLock { $0.lines } }
    /// The messages of the records kept.
    public var messages: [String] { records.map(\.message) }

    /// Forgets every record.
    public func reset() {
        state.withLock {
            $0.records.removeAll()
            $0.lines.removeAll()
        }
    }

    public var counters: AppenderCounters { state.withLock { $0.counters } }
}

/// log4js's `logLevelFilter`: passes records whose level is between `level` and `maxLevel` (inclusive) on.
public final class LogLevelFilterAppender: LogAppender {
    public let target: any LogAppender
    public let minimum: LogLevel
    public let maximum: LogLevel

    public init(target: any LogAppender, level: LogLevel, maxLevel: LogLevel = .fatal) {
        self.target = target
        self.minimum = level
        self.maximum = maxLevel
    }

    public func append(_ record: borrowing LogRecord) {
        if record.level.value >= minimum.value && record.level.value <= maximum.value { target.append(record) }
    }
}

/// log4js's `categoryFilter`: passes records on unless their category is one of `excluded` (exact names, as in
/// log4js: excluding `db` does not exclude `db.pool`).
public final class CategoryFilterAppender: LogAppender {
    public let target: any LogAppender
    public let excluded: Set<String>

    public init(target: any LogAppender, exclude: [String]) {
        self.target = target
        self.excluded = Set(exclude)
    }

    public func append(_ record: borrowing LogRecord) {
        if !excluded.contains(record.category) { target.append(record) }
    }
}

/// log4js's `noLogFilter`: passes records on unless their message matches one of the regular expressions
/// (case-insensitive, as in log4js). Empty expressions are ignored.
public final class NoLogFilterAppender: LogAppender {
    public let target: any LogAppender
    private let expression: NSRegularExpression?

    /// Throws when an expression does not compile.
    public init(target: any LogAppender, exclude: [String]) throws {
        self.target = target
        let patterns = exclude.filter { !$0.isEmpty }
        self.expression =
            patterns.isEmpty
            ? nil
            : try NSRegularExpression(
                pattern: patterns.map { "(?:\($0))" }.joined(separator: "|"),
                options: [.caseInsensitive]
            )
    }

    public func append(_ record: borrowing LogRecord) {
        if let expression {
            let message = record.message
            let range = NSRange(message.startIndex..<message.endIndex, in: message)
            if expression.firstMatch(in: message, options: [], range: range) != nil { return }
        }
        target.append(record)
    }
}
