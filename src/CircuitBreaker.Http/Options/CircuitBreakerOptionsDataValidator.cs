using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>The range and required rules of the data annotations on <see cref="CircuitBreakerOptions"/>, generated at compile time.</summary>
[OptionsValidator]
internal sealed partial class CircuitBreakerOptionsDataValidator : IValidateOptions<CircuitBreakerOptions>;
