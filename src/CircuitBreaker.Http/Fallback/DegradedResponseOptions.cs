using System.ComponentModel.DataAnnotations;

namespace CircuitBreaker.Http;

/// <summary>
/// A fixed response from configuration, served while the circuit is open when nothing earlier in the fallback
/// chain answered, for example <c>{"user":null,"fallback":true}</c>. Off until <see cref="StatusCode"/> or
/// <see cref="Body"/> is set.
/// </summary>
public class DegradedResponseOptions
{
    /// <summary>Gets or sets the status code.</summary>
    /// <value>The default value is <see langword="null"/>: 503 when a <see cref="Body"/> is set, otherwise off.</value>
    [Range(100, 599)]
    public int? StatusCode { get; set; }

    /// <summary>Gets or sets the media type of <see cref="Body"/>, for example <c>application/json</c>; required with a body.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? ContentType { get; set; }

    /// <summary>Gets or sets the body, as text encoded in UTF-8.</summary>
    /// <value>The default value is <see langword="null"/> (no body).</value>
    public string? Body { get; set; }

    /// <summary>
    /// Gets the extra headers of the response, such as <c>X-Degraded: 1</c>; not <c>Content-Type</c> or <c>Content-Length</c>,
    /// which come from <see cref="ContentType"/> and <see cref="Body"/>.
    /// </summary>
    /// <value>The default value is an empty dictionary.</value>
    public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    internal bool IsEnabled => StatusCode is not null || Body is not null;
}
