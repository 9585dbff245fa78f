#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// Appenders whose lines go through ``LogWriter``s: what a ``LogSystem`` asks of their files (reopen, roll, flush).
protocol WritingAppender: LogAppender {
    /// The writers open now.
    var openWriters: [LogWriter] { get }
    /// The writer of `file` (a path this appender writes), opened if the appender writes it and has it closed.
    func writer(forFile file: String) -> LogWriter?
}

extension WriterAppender: WritingAppender {
    var openWriters: [LogWriter] { [writer] }
    func writer(forFile file: String) -> LogWriter? { writer.target.name == file ? writer : nil }
}

/// log4js's `multiFile`: one file per value of a property of the event (the category, the level, the process, or a
/// metadata key), `<base>/<value><extension>`, each written and rolled as a `file` appender's; with a `timeout`, a
/// file not written for that long is closed and reopened at its next event.
///
/// Events without the property are not written by this appender (log4js ignores them too). A value is used as the
/// file name as it is, except `/`, `%`, NUL and a leading `.`, which are percent-encoded: a value never names a file
/// outside `base` (log4js joins it as a path).
///
/// Lines are rendered on the caller's thread and handed to the file's writer under one lock, which also guards
/// opening and closing files: a line is never handed to a file being closed, and each thread's lines reach each file
/// in order.
public final class MultiFileAppender: LogAppender, WritingAppender {
    public let options: MultiFileAppenderOptions
    public let layout: any LogLayout
    private let syncThreshold: Int
    /// Opens the writer of a path; `firstOpen` is false when this appender has had the file open before (a file
    /// emptied at start, `flags: w`, is emptied once, not at each reopen).
    private let openWriter: @Sendable (_ path: String, _ firstOpen: Bool) throws(LogSystemError) -> LogWriter
    /// This process's pid (the `pid` property), as the layouts print it.
    private let pid: String

    private struct File {
        var writer: LogWriter
        /// Monotonic seconds of the last event (with a timeout).
        var lastUsed: Double
    }

    private struct State {
        var files: [String: File] = [:]
        var everOpened: Set<String> = []
        /// The counts of closed files, and lines no file could take.
        var closedCounters = AppenderCounters()
        /// Values whose file could not be opened, each reported once.
        var reportedFailures: Set<String> = []
        var isShutDown = false
    }

    private let state = Mutex(State())
    /// Dispatch sources are thread-safe; only `cancel` is called from elsewhere.
    nonisolated(unsafe) private let sweeper: (any DispatchSourceTimer)?

    init(
        options: MultiFileAppenderOptions,
        layout: any LogLayout,
        syncLevel: LogLevel?,
        pid: Int,
        openWriter: @escaping @Sendable (_ path: String, _ firstOpen: Bool) throws(LogSystemError) -> LogWriter
    ) {
        self.options = options
        self.layout = layout
        self.syncThreshold = syncLevel?.value ?? Int.max
        self.openWriter = openWriter
        self.pid = String(pid)
        if let timeout = options.timeout {
            // log4js checks each file every `timeout`; so does this, all files at once.
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "octopus.multiFile.sweeper"))
            let interval = DispatchTimeInterval.microseconds(max(1000, Int(timeout * 1_000_000)))
            timer.schedule(deadline: .now() + interval, repeating: interval)
            sweeper = timer
            timer.setEventHandler { [weak self] in self?.closeIdleFiles(olderThan: timeout) }
            timer.resume()
        } else {
            sweeper = nil
        }
    }

    deinit { sweeper?.cancel() }

    /// The value of the property for `record`, or `nil` when it has none.
    @inline(__always)
    private func value(of record: borrowing LogRecord) -> String? {
        switch options.property {
        case "categoryName": return record.category
        case "level": return record.level.name
        case "pid": return pid
        default: return record.metadata[options.property].map { "\($0)" }
        }
    }

    public func append(_ record: borrowing LogRecord) {
        guard let value = value(of: record), !value.isEmpty else { return }
        var line = LogBuffer.acquireThreadBuffer()
        layout.render(record, into: &line)
        line.append(UInt8(ascii: "\n"))
        let durable = record.level.value >= syncThreshold
        let now = options.timeout == nil ? 0 : LogWriter.monotonicSeconds()
        state.withLock { state in
            guard !state.isShutDown else {
                state.closedCounters.drops += 1
                return
            }
            guard let writer = Self.writer(for: value, state: &state, now: now, open: openWriter, options: options) else {
                state.closedCounters.lostLines += 1
                return
            }
            writer.submit(line.bytes(), durable: durable)
        }
        line.releaseThreadBuffer()
    }

    /// The open writer of `value`'s file, opening it if needed (lock held).
    private static func writer(
        for value: String,
        state: inout State,
        now: Double,
        open: (String, Bool) throws(LogSystemError) -> LogWriter,
        options: MultiFileAppenderOptions
    ) -> LogWriter? {
        if let file = state.files[value] {
            if now > 0 { state.files[value]?.lastUsed = now }
            return file.writer
        }
        let path = options.path(for: value)
        do {
            let writer = try open(path, !state.everOpened.contains(value))
            state.files[value] = File(writer: writer, lastUsed: now)
            state.everOpened.insert(value)
            return writer
        } catch {
            state.closedCounters.writeErrors += 1
            if state.reportedFailures.count < 1000, state.reportedFailures.insert(value).inserted {
                LogWriter.report("octopus: multiFile appender cannot write \(path): \(error); its lines are lost")
            }
            return nil
        }
    }

    /// Closes the files without an event for `timeout` seconds, after writing what they hold.
    func closeIdleFiles(olderThan timeout: Double) {
        let now = LogWriter.monotonicSeconds()
        state.withLock { state in
            guard !state.isShutDown else { return }
            for (value, file) in state.files where now - file.lastUsed >= timeout {
                file.writer.shutdown()
                state.files[value] = nil
                Self.add(file.writer.currentCounters, to: &state.closedCounters)
            }
        }
    }

    /// The number of files open now.
    public var openFileCount: Int { state.withLock { $0.files.count } }

    var openWriters: [LogWriter] { state.withLock { $0.files.values.map(\.writer) } }

    func writer(forFile file: String) -> LogWriter? {
        guard let value = options.value(forPath: file) else { return nil }
        let now = options.timeout == nil ? 0 : LogWriter.monotonicSeconds()
        return state.withLock { state in
            state.isShutDown ? nil : Self.writer(for: value, state: &state, now: now, open: openWriter, options: options)
        }
    }

    public func flush() {
        for writer in openWriters { writer.flush() }
    }

    public func shutdown() {
        sweeper?.cancel()
        state.withLock { state in
            guard !state.isShutDown else { return }
            state.isShutDown = true
            for file in state.files.values {
                file.writer.shutdown()
                Self.add(file.writer.currentCounters, to: &state.closedCounters)
            }
            state.files.removeAll()
        }
    }

    public var counters: AppenderCounters {
        let (closed, writers) = state.withLock { ($0.closedCounters, $0.files.values.map(\.writer)) }
        var total = closed
        for writer in writers { Self.add(writer.currentCounters, to: &total) }
        return total
    }

    private static func add(_ counters: AppenderCounters, to total: inout AppenderCounters) {
        total.lines += counters.lines
        total.bytes += counters.bytes
        total.batches += counters.batches
        total.drops += counters.drops
        total.writeErrors += counters.writeErrors
        total.lostLines += counters.lostLines
        total.rolls += counters.rolls
        total.archived += counters.archived
        total.archiveErrors += counters.archiveErrors
    }
}

extension MultiFileAppenderOptions {
    /// `base` with a trailing `/`.
    var directory: String { base.hasSuffix("/") ? base : base + "/" }

    /// The file of a value: `<base>/<value><extension>`, the value's `/`, `%`, NUL and leading `.` percent-encoded.
    public func path(for value: String) -> String {
        directory + Self.fileComponent(value) + fileExtension
    }

    static func fileComponent(_ value: String) -> String {
        let utf8 = value.utf8
        let plain = utf8.first != UInt8(ascii: ".") && !utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "%") || $0 == 0 }
        if plain { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count + 6)
        for (index, byte) in utf8.enumerated() {
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "%") || byte == 0 || (index == 0 && byte == UInt8(ascii: ".")) {
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value whose file `path` is, or `nil` when this appender does not write it (a follower's request to roll a
    /// file reaches every multiFile appender).
    func value(forPath path: String) -> String? {
        guard path.hasPrefix(directory), path.hasSuffix(fileExtension) else { return nil }
        let name = path.dropFirst(directory.count).dropLast(fileExtension.count)
        guard !name.isEmpty, !name.contains("/") else { return nil }
        var bytes: [UInt8] = []
        var utf8 = Substring(name).utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2, let high = hexValue(utf8.popFirst()!), let low = hexValue(utf8.popFirst()!) else { return nil }
            bytes.append(high << 4 | low)
        }
        let value = String(decoding: bytes, as: UTF8.self)
        return Self.fileComponent(value) == name ? value : nil
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
