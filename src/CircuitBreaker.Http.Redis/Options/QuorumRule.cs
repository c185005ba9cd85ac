using System.Globalization;

namespace CircuitBreaker.Http.Redis;

/// <summary>A parsed <see cref="RedisCoordinationOptions.Quorum"/>: a count of instances, or a percentage of the live ones.</summary>
internal readonly record struct QuorumRule(int Count, double Percent)
{
    /// <summary>A percentage quorum never drops below this, so that one instance alone never opens a circuit for the others.</summary>
    public const int MinimumForPercent = 2;

    public static bool TryParse(string? text, out QuorumRule rule)
    {
        rule = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        if (text.EndsWith('%'))
        {
            if (double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var percent)
                && percent > 0 && percent <= 100)
            {
                rule = new QuorumRule(0, percent);
                return true;
            }

            return false;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count >= 1)
        {
            rule = new QuorumRule(count, 0);
            return true;
        }

        return false;
    }

    /// <summary>How many votes open a circuit for the fleet when <paramref name="liveInstances"/> are alive.</summary>
    public int Required(int liveInstances) => Count > 0
        ? Count
        : Math.Max(MinimumForPercent, (int)Math.Ceiling(liveInstances * Percent / 100));
}
