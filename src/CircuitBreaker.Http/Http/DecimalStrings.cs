using System.Globalization;

namespace CircuitBreaker.Http;

/// <summary>
/// Small non-negative integers as strings, made once each: the status codes of <c>error.type</c> and the seconds of
/// <c>Age</c> and <c>Retry-After</c>, which would otherwise cost a new string on every failure or fallback.
/// </summary>
internal static class DecimalStrings
{
    // Up to a little over an hour of seconds: every status code, and the breaks and ages of a typical outage.
    private const int Cached = 4096;

    private static readonly string?[] Strings = new string?[Cached];

    /// <summary>The decimal form of <paramref name="value"/>, in the invariant culture.</summary>
    public static string Of(long value)
    {
        if ((ulong)value >= Cached)
        {
            return value.ToString(CultureInfo.InvariantCulture);
        }

        // A race makes the same string twice, and either is right.
        return Strings[value] ??= value.ToString(CultureInfo.InvariantCulture);
    }
}
