/// A cron expression that cannot be read, with the field and the text at fault.
///
/// ```
/// invalid cron expression "0 61 * * *": minute "61" is out of range 0-59
/// ```
public struct CronError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field at fault; `nil` when the expression as a whole is wrong (the number of fields, a preset).
    public var field: CronField?
    /// The expression as given.
    public var expression: String
    /// What is wrong, naming the field and the text: `minute "61" is out of range 0-59`.
    public var reason: String

    public init(expression: String, field: CronField?, reason: String) {
        self.expression = expression
        self.field = field
        self.reason = reason
    }

    public var description: String { "invalid cron expression \"\(expression)\": \(reason)" }
}

/// The fields of a cron expression, named as errors name them.
public enum CronField: String, Sendable, Hashable, CaseIterable {
    case second
    case minute
    case hour
    case dayOfMonth = "day-of-month"
    case month
    case dayOfWeek = "day-of-week"

    /// The smallest and largest value the field accepts (day-of-week 7 is Sunday, as 0).
    var bounds: ClosedRange<Int> {
        switch self {
        case .second, .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    var names: [String] {
        switch self {
        case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        default: []
        }
    }

    /// The value the first name stands for.
    var firstNamed: Int { self == .month ? 1 : 0 }
}
