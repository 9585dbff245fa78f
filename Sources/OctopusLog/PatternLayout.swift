import Logging

/// A user token for `%x{name}` in a ``PatternLayout``: a constant, or a function of the event.
public enum PatternToken: Sendable {
    case constant(String)
    case dynamic(@Sendable (LogRecord) -> String)
}

/// A pattern that does not compile: what and at which character offset.
public struct PatternError: Error, Sendable, Hashable, CustomStringConvertible {
    public var pattern: String
    public var offset: Int
    public var reason: String

    public var description: String { "\(reason) at offset \(offset) in pattern \"\(pattern)\"" }
}

/// log4js's `pattern` layout, compiled once into a list of pieces.
///
/// Tokens: `%d{format}` date (see ``DateFormat``), `%p` level, `%c{N}` category (last N parts), `%m` message,
/// `%n` newline, `%h` host name, `%z` pid, `%r` time as `hh:mm:ss`, `%%` a percent sign, `%x{name}` a user token,
/// `%X{key}` a swift-log metadata value (`%X` alone: every entry as ` key=value`, each with a leading space, so
/// `%m%X` reads well), `%f{depth}` the source file
/// (the last `depth` path parts), `%l` the line, `%M` the function, `%[ … %]` the level's colour, `%y` the pid
/// (log4js prints cluster information there, and the pid outside a cluster).
/// log4js's `%o` (column), `%s` (call stack), `%C` (class), `%A` (arguments) and `%F` have no swift-log
/// counterpart: `%F` prints the function and the others print nothing, so a log4js pattern still compiles.
///
/// Padding and truncation as in log4js: `%5p` pads on the left to 5 characters, `%-5p` on the right; `%.10c`
/// keeps the first 10 characters, `%.-10c` the last 10; truncation applies before padding (`%-5.5p`).
/// A missing value (an unset `%X{key}` or `%x{name}`) renders empty, where log4js prints `null`.
public struct PatternLayout: LogLayout {
    /// Plain values, so rendering copies no references: dates, user tokens and metadata keys are indices into
    /// the layout's tables.
    enum Field: Sendable {
        case date(renderer: Int)
        case level, message, newline, hostname, pid, percent, colourStart, colourEnd, line, function, nothing
        case category(precision: Int?)
        case user(name: Int)
        case metadata(key: Int?)
        case file(depth: Int?)
    }

    enum Piece: Sendable {
        case literal(start: Int, count: Int)
        case field(Field, padding: Int, truncation: Int)
    }

    struct Compiled: Sendable {
        var pieces: [Piece] = []
        var literals: [UInt8] = []
        var renderers: [TimestampRenderer] = [] {
            didSet { unretainedRenderers = renderers.map { .passUnretained($0) } }
        }
        /// `renderers`, which keeps them alive, unretained: every thread renders dates on every line, and retaining
        /// one shared object from several cores makes them wait for each other.
        private(set) var unretainedRenderers: [Unmanaged<TimestampRenderer>] = []
        var names: [String] = []
    }

    /// log4js's default pattern.
    public static let defaultPattern = "%r %p %c - %m%n"

    public let pattern: String
    let compiled: Compiled
    let tokens: [String: PatternToken]
    let environment: LayoutEnvironment
    let hostnameBytes: [UInt8]
    let pidBytes: [UInt8]
    /// No piece reads the whole record (a `%x` token computed from the record): the layout renders from the event's
    /// parts (and its merged metadata, when it ``readsMetadata``), and the handler builds no record for it.
    let readsOnlyTheEvent: Bool
    /// A piece prints metadata (`%X`, `%X{key}`): the handler merges the event's metadata for it.
    let readsMetadata: Bool

    public init(
        pattern: String = PatternLayout.defaultPattern,
        tokens: [String: PatternToken] = [:],
        timeZone: LogTimeZone = .local,
        environment: LayoutEnvironment = .current
    ) throws(PatternError) {
        self.pattern = pattern
        self.tokens = tokens
        self.environment = environment
        self.hostnameBytes = Array(environment.hostname.utf8)
        self.pidBytes = Array(String(environment.pid).utf8)
        let compiled = try Self.compile(pattern, timeZone: timeZone)
        self.compiled = compiled
        self.readsOnlyTheEvent = compiled.pieces.allSatisfy { piece in
            guard case .field(.user(let name), _, _) = piece, case .dynamic = tokens[compiled.names[name]] else { return true }
            return false
        }
        self.readsMetadata = compiled.pieces.contains { piece in
            if case .field(.metadata, _, _) = piece { true } else { false }
        }
    }

    static func compile(_ pattern: String, timeZone: LogTimeZone) throws(PatternError) -> Compiled {
        let chars = Array(pattern.unicodeScalars)
        var compiled = Compiled()
        var literal = ""
        func name(_ text: String) -> Int {
            compiled.names.append(text)
            return compiled.names.count - 1
        }
        func renderer(_ format: String) -> Int {
            compiled.renderers.append(TimestampRenderer(format: DateFormat(format), timeZone: timeZone))
            return compiled.renderers.count - 1
        }
        func flushLiteral() {
            guard !literal.isEmpty else { return }
            let start = compiled.literals.count
            compiled.literals.append(contentsOf: literal.utf8)
            compiled.pieces.append(.literal(start: start, count: compiled.literals.count - start))
            literal = ""
        }
        var i = 0
        func fail(_ reason: String, at offset: Int) -> PatternError {
            PatternError(pattern: pattern, offset: offset, reason: reason)
        }
        /// The positive number a `{…}` specifier holds, `nil` without one.
        func positive(_ specifier: String?, _ token: String, at offset: Int) throws(PatternError) -> Int? {
            guard let specifier else { return nil }
            guard let n = Int(specifier), n > 0 else {
                throw fail("\(token) takes a positive number, not \"\(specifier)\"", at: offset)
            }
            return n
        }
        func number(allowSign: Bool) -> Int? {
            var sign = 1
            let start = i
            if allowSign, i < chars.count, chars[i] == "-" {
                sign = -1
                i += 1
            }
            var value = 0
            var digits = 0
            while i < chars.count, (48...57).contains(chars[i].value) {
                let d = Int(chars[i].value - 48)
                value = value * 10 + d
                digits += 1
                i += 1
            }
            if digits == 0 {
                i = start
                return nil
            }
            return sign * value
        }
        while i < chars.count {
            guard chars[i] == "%" else {
                literal.unicodeScalars.append(chars[i])
                i += 1
                continue
            }
            let start = i
            i += 1
            let padding = number(allowSign: true) ?? 0
            var truncation = 0
            if i < chars.count, chars[i] == "." {
                i += 1
                guard let t = number(allowSign: true) else {
                    throw fail("a truncation \"%.\" must be followed by a number", at: start)
                }
                truncation = t
            }
            guard i < chars.count else { throw fail("the pattern ends inside a token", at: start) }
            let conversion = chars[i]
            i += 1
            var specifier: String?
            if i < chars.count, chars[i] == "{" {
                guard let close = chars[i...].firstIndex(of: "}") else {
                    throw fail("\"{\" without a closing \"}\"", at: i)
                }
                specifier = String(String.UnicodeScalarView(chars[(i + 1)..<close]))
                i = close + 1
            }
            let field: Field
            switch conversion {
            case "d": field = .date(renderer: renderer(specifier ?? "ISO8601"))
            case "p": field = .level
            case "c": field = .category(precision: try positive(specifier, "%c{N}", at: start))
            case "m": field = .message
            case "n": field = .newline
            case "h": field = .hostname
            case "z", "y": field = .pid
            case "r": field = .date(renderer: renderer("hh:mm:ss"))
            case "%": field = .percent
            case "[": field = .colourStart
            case "]": field = .colourEnd
            case "x":
                guard let specifier, !specifier.isEmpty else { throw fail("%x needs a token name: %x{name}", at: start) }
                field = .user(name: name(specifier))
            case "X": field = .metadata(key: specifier.map(name))
            case "f": field = .file(depth: try positive(specifier, "%f{depth}", at: start))
            case "l": field = .line
            case "M", "F": field = .function
            case "o", "s", "C", "A": field = .nothing
            default:
                throw fail("unknown token \"%\(conversion)\"", at: start)
            }
            flushLiteral()
            compiled.pieces.append(.field(field, padding: padding, truncation: truncation))
        }
        flushLiteral()
        return compiled
    }

    public func render(_ record: borrowing LogRecord, into out: inout LogBuffer) {
        var message = record.message
        message.withUTF8 { message in
            let parts = EventParts(
                levelValue: record.level.value, message: message, timestamp: record.timestamp, file: record.file,
                function: record.function, line: record.line)
            render(parts, record: record, into: &out)
        }
    }

    private func render(_ parts: borrowing EventParts, record: borrowing LogRecord, into out: inout LogBuffer) {
        compiled.pieces.withUnsafeBufferPointer { pieces in
            compiled.literals.withUnsafeBufferPointer { literals in
                renderPieces(pieces, literals, parts, into: &out) { field, out in
                    if render(field, level: record.level, category: record.category, into: &out) { return }
                    switch field {
                    case .user(let name):
                        if case .dynamic(let function) = tokens[compiled.names[name]] {
                            out.appendUTF8(function(record))
                        }
                    case .metadata(let key): renderMetadata(key, record.metadata, into: &out)
                    default: break
                    }
                }
            }
        }
    }

    /// What is left of the pattern once a category and a level are known: the pieces whose value they fix (the
    /// level, the category, literals, the host name, the pid, constant tokens, colours, newlines), padded and
    /// truncated, folded into the literal bytes around them, with the line's closing newline at the end. A line
    /// of `%d [%p] %c - %m` is then three pieces: the date, `" [INFO] app - "`, the message and newline.
    struct Program: Sendable {
        var pieces: [Piece] = []
        var literals: [UInt8] = []
    }

    /// The program for events of `level` in `category` (see ``Program``); only for a layout that
    /// ``readsOnlyTheEvent``.
    func program(category: String, level: LogLevel) -> Program {
        var program = Program()
        var fixed = LogBuffer()
        let parts = EventParts(
            levelValue: level.value, message: UnsafeBufferPointer(start: nil, count: 0),
            timestamp: LogTimestamp(seconds: 0), file: "", function: "", line: 0)
        func endLiteral() {
            guard fixed.count > 0 else { return }
            let start = program.literals.count
            program.literals.append(contentsOf: fixed.bytes())
            program.pieces.append(.literal(start: start, count: fixed.count))
            fixed.truncate(to: 0)
        }
        for piece in compiled.pieces {
            switch piece {
            case .literal(let start, let count):
                compiled.literals.withUnsafeBufferPointer { fixed.append(UnsafeBufferPointer(rebasing: $0[start..<(start + count)])) }
            case .field(let field, let padding, let truncation):
                if isFixedByCategoryAndLevel(field) {
                    let start = fixed.count
                    if !render(field, level: level, category: category, into: &fixed) {
                        _ = render(field, parts, into: &fixed)
                    }
                    if padding != 0 || truncation != 0 {
                        Self.truncateAndPad(&fixed, from: start, truncation: truncation, padding: padding)
                    }
                } else {
                    endLiteral()
                    program.pieces.append(piece)
                }
            }
        }
        fixed.append(UInt8(ascii: "\n"))
        endLiteral()
        return program
    }

    /// Whether a program reads nothing of an event but its timestamp and message (no file, line, function or
    /// metadata): the writer can then render the line itself, later, from a copy of those two (see
    /// ``LogWriter/submitDeferred(format:timestamp:message:durable:)``).
    static func readsOnlyTimestampAndMessage(_ program: Program) -> Bool {
        program.pieces.allSatisfy { piece in
            guard case .field(let field, _, _) = piece else { return true }
            switch field {
            case .date, .message, .newline, .hostname, .pid, .percent, .colourEnd, .nothing: return true
            case .level, .category, .colourStart, .user, .metadata, .file, .line, .function: return false
            }
        }
    }

    private func isFixedByCategoryAndLevel(_ field: Field) -> Bool {
        switch field {
        case .level, .category, .newline, .hostname, .pid, .percent, .colourStart, .colourEnd, .nothing: true
        case .user(let name): if case .constant = tokens[compiled.names[name]] { true } else { false }
        case .date, .message, .file, .line, .function, .metadata: false
        }
    }

    /// Renders a line (newline included) from the event's parts with a program made by this layout, held in memory
    /// its owner keeps (see ``EventWriter``).
    func render(_ parts: borrowing EventParts, program: RawProgram, into out: inout LogBuffer) {
        renderPieces(program.pieces, program.literals, parts, into: &out) { _, _ in }
    }

    /// The same, with the event's merged metadata for the `%X` pieces (for a layout that ``readsMetadata``).
    func render(
        _ parts: borrowing EventParts, program: RawProgram, metadata: Logger.Metadata, into out: inout LogBuffer
    ) {
        renderPieces(program.pieces, program.literals, parts, into: &out) { field, out in
            if case .metadata(let key) = field { renderMetadata(key, metadata, into: &out) }
        }
    }

    /// `%X{key}`: the value, or nothing; `%X`: every pair.
    private func renderMetadata(_ key: Int?, _ metadata: Logger.Metadata, into out: inout LogBuffer) {
        if let key {
            if let value = metadata[compiled.names[key]] { out.appendUTF8(value.rendered) }
        } else {
            appendMetadataPairs(metadata, into: &out)
        }
    }

    /// The pieces in order; `recordField` renders what the parts do not hold (metadata, tokens computed from the
    /// record).
    @inline(__always)
    private func renderPieces(
        _ pieces: UnsafeBufferPointer<Piece>, _ literals: UnsafeBufferPointer<UInt8>, _ parts: borrowing EventParts,
        into out: inout LogBuffer, recordField: (Field, inout LogBuffer) -> Void
    ) {
        for piece in pieces {
            switch piece {
            case .literal(let start, let count):
                out.append(UnsafeBufferPointer(rebasing: literals[start..<(start + count)]))
            case .field(let field, let padding, let truncation):
                let start = out.count
                if !render(field, parts, into: &out) { recordField(field, &out) }
                if padding != 0 || truncation != 0 {
                    Self.truncateAndPad(&out, from: start, truncation: truncation, padding: padding)
                }
            }
        }
    }

    /// Renders a field of the level or the category; false for another.
    private func render(_ field: Field, level: LogLevel, category: String, into out: inout LogBuffer) -> Bool {
        switch field {
        case .level: out.appendUTF8(level.name)
        case .category(let precision):
            if let precision {
                out.appendUTF8(Self.lastParts(of: category, count: precision, separator: "."))
            } else {
                out.appendUTF8(category)
            }
        case .colourStart: out.appendUTF8(level.colour.start)
        default: return false
        }
        return true
    }

    /// Renders a field the event's parts hold; false for one they do not (the level's and the category's, which
    /// a program has rendered already, metadata, tokens computed from the record).
    @inline(__always)
    private func render(_ field: Field, _ parts: borrowing EventParts, into out: inout LogBuffer) -> Bool {
        switch field {
        case .date(let renderer):
            compiled.unretainedRenderers[renderer]._withUnsafeGuaranteedRef { $0.render(parts.timestamp, into: &out) }
        case .level, .category, .colourStart: return false
        case .message: out.append(parts.message)
        case .newline: out.append(UInt8(ascii: "\n"))
        case .hostname: out.append(hostnameBytes)
        case .pid: out.append(pidBytes)
        case .percent: out.append(UInt8(ascii: "%"))
        case .colourEnd: out.appendUTF8(LogColour.end)
        case .user(let name):
            guard case .constant(let value) = tokens[compiled.names[name]] else { return false }
            out.appendUTF8(value)
        case .metadata: return false
        case .file(let depth):
            if let depth {
                out.appendUTF8(Self.lastParts(of: parts.file, count: depth, separator: "/"))
            } else {
                out.appendUTF8(parts.file)
            }
        case .line: out.appendDecimal(Int(parts.line))
        case .function: out.appendUTF8(parts.function)
        case .nothing: break
        }
        return true
    }

    static func lastParts(of text: String, count: Int, separator: Character) -> Substring {
        var seen = 0
        var index = text.endIndex
        while index > text.startIndex {
            let previous = text.index(before: index)
            if text[previous] == separator {
                seen += 1
                if seen == count { return text[index...] }
            }
            index = previous
        }
        return text[...]
    }

    /// Applies log4js's truncation, then padding, to the bytes from `start` to the end of `out`.
    static func truncateAndPad(_ out: inout LogBuffer, from start: Int, truncation: Int, padding: Int) {
        let isASCII = !out.bytes(from: start).contains { $0 >= 0x80 }
        if truncation != 0 {
            let keep = abs(truncation)
            if isASCII {
                let length = out.count - start
                if length > keep {
                    if truncation > 0 {
                        out.truncate(to: start + keep)
                    } else {
                        out.remove(at: start, length: length - keep)
                    }
                }
            } else {
                let text = String(decoding: out.bytes(from: start), as: UTF8.self)
                if text.count > keep {
                    let kept = truncation > 0 ? String(text.prefix(keep)) : String(text.suffix(keep))
                    out.truncate(to: start)
                    out.appendUTF8(kept)
                }
            }
        }
        if padding != 0 {
            let width = abs(padding)
            let length = isASCII ? out.count - start : String(decoding: out.bytes(from: start), as: UTF8.self).count
            if length < width {
                if padding > 0 {
                    out.insert(UInt8(ascii: " "), count: width - length, at: start)
                } else {
                    for _ in 0..<(width - length) { out.append(UInt8(ascii: " ")) }
                }
            }
        }
    }
}
