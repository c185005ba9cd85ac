using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace CircuitBreaker.Http;

/// <summary>
/// The set of status codes counted as failures, parsed once from
/// <see cref="CircuitBreakerOptions.FailureStatusCodes"/> into a bitmap so that a lookup is one array read.
/// One bit per code (80 bytes for 100-599) rather than a <see langword="bool"/> each, so that the set stays in
/// one or two cache lines.
/// </summary>
internal sealed class StatusCodeSet
{
    private const int MinCode = 100;
    private const int MaxCode = 599;

    private readonly ulong[] _bits;

    private StatusCodeSet(ulong[] bits) => _bits = bits;

    public bool Contains(int statusCode)
    {
        var word = (uint)statusCode >> 6;
        return word < (uint)_bits.Length && (_bits[word] & (1UL << statusCode)) != 0;
    }

    public static StatusCodeSet Parse(string text) =>
        TryParse(text, out var set, out var error) ? set : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out StatusCodeSet? set, [NotNullWhen(false)] out string? error)
    {
        set = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "must list at least one status code, range or class, for example \"5xx,408\"";
            return false;
        }

        var bits = new ulong[(MaxCode >> 6) + 1];
        var any = false;
        foreach (var token in text.Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!TryParseToken(token, out var low, out var high))
            {
                error = $"'{token}' is not a status code (100-599), a range such as 500-504, or a class such as 5xx";
                return false;
            }

            for (var code = low; code <= high; code++)
            {
                bits[code >> 6] |= 1UL << code;
            }

            any = true;
        }

        if (!any)
        {
            error = "must list at least one status code, range or class, for example \"5xx,408\"";
            return false;
        }

        set = new StatusCodeSet(bits);
        error = null;
        return true;
    }

    private static bool TryParseToken(string token, out int low, out int high)
    {
        low = high = 0;
        if (token.Length == 3 && token[0] is >= '1' and <= '5' && token.EndsWith("xx", StringComparison.OrdinalIgnoreCase))
        {
            low = (token[0] - '0') * 100;
            high = low + 99;
            return true;
        }

        var dash = token.IndexOf('-', StringComparison.Ordinal);
        if (dash > 0)
        {
            return TryParseCode(token[..dash], out low) && TryParseCode(token[(dash + 1)..], out high) && low <= high;
        }

        if (TryParseCode(token, out low))
        {
            high = low;
            return true;
        }

        return false;
    }

    private static bool TryParseCode(string text, out int code) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out code) && code is >= MinCode and <= MaxCode;
}
