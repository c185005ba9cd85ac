using System.ComponentModel.DataAnnotations;
using System.Diagnostics.CodeAnalysis;

namespace CircuitBreaker.Http;

/// <summary>
/// The cache of the last successful (2xx) response to each GET or HEAD request, replayed while the circuit is
/// open. It never stores what it may not replay: responses with <c>Cache-Control: no-store</c> or
/// <c>Set-Cookie</c>; and it keys entries by the request's credentials (<c>Authorization</c>, <c>Cookie</c>)
/// and by the headers the response's <c>Vary</c> names, so one caller's data is never served to another.
/// </summary>
public class FallbackCacheOptions
{
    /// <summary>Gets or sets a value indicating whether successful responses are cached and replayed.</summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool Enabled { get; set; }

    /// <summary>Gets or sets the age beyond which a cached response is no longer replayed.</summary>
    /// <value>The default value is 5 minutes.</value>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), "00:00:00.001", "365.00:00:00")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets the most responses kept for one client. Per client, like <see cref="MaxTotalBytes"/>: a
    /// host override cannot change it.
    /// </summary>
    /// <value>The default value is 1000.</value>
    [Range(1, int.MaxValue)]
    public int MaxEntries { get; set; } = 1000;

    /// <summary>Gets or sets the largest body that is cached; a longer one is simply not stored.</summary>
    /// <value>The default value is 1 MiB (1048576).</value>
    [Range(1, int.MaxValue)]
    public int MaxEntryBytes { get; set; } = 1024 * 1024;

    /// <summary>Gets or sets the most body bytes kept for one client. Per client: a host override cannot change it.</summary>
    /// <value>The default value is 64 MiB (67108864).</value>
    [Range(1, long.MaxValue)]
    public long MaxTotalBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Gets or sets a value indicating whether requests that carry credentials (<c>Authorization</c> or
    /// <c>Cookie</c>) are left out of the cache altogether. Even when they are cached, an entry is only ever
    /// replayed to a request with the same credentials.
    /// </summary>
    /// <value>The default value is <see langword="false"/>.</value>
    public bool ExcludeRequestsWithCredentials { get; set; }
}
