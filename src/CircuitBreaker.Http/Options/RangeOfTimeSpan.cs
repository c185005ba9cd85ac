namespace CircuitBreaker.Http;

/// <summary>Why <c>[Range(typeof(TimeSpan), ...)]</c> on an options property is safe to trim.</summary>
internal static class RangeOfTimeSpan
{
    /// <summary>
    /// RangeAttribute's constructor is flagged because its own validation looks up a type converter by reflection; these
    /// options are validated by the [OptionsValidator] generated at compile time, which checks the range with code of its
    /// own and never asks the attribute to validate.
    /// </summary>
    public const string Justification =
        "Validated by the [OptionsValidator] generated at compile time, which checks TimeSpan ranges itself; RangeAttribute.IsValid is never called.";
}
