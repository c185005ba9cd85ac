namespace CircuitBreaker.Http;

/// <summary>
/// An override of <see cref="FallbackCacheOptions"/> for one host. <c>MaxEntries</c> and <c>MaxTotalBytes</c>
/// bound the whole client's cache, so they cannot be set per host.
/// </summary>
public class FallbackCacheHostOptions
{
    /// <summary>Gets or sets the override of <see cref="FallbackCacheOptions.Enabled"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public bool? Enabled { get; set; }

    /// <summary>Gets or sets the override of <see cref="FallbackCacheOptions.MaxAge"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? MaxAge { get; set; }

    /// <summary>Gets or sets the override of <see cref="FallbackCacheOptions.MaxEntryBytes"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? MaxEntryBytes { get; set; }

    /// <summary>Gets or sets the override of <see cref="FallbackCacheOptions.ExcludeRequestsWithCredentials"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public bool? ExcludeRequestsWithCredentials { get; set; }
}
