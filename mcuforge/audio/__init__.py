"""Audio: reading and resampling WAV clips, synthetic sound sources' maths, and the integer feature front end
(MFCC / log-mel) whose tables the engine's C front end shares. Builds on mcuforge.core only."""
