/* The Llama 2 tokenizer files, embedded so that `tulu init` can write a complete model
   directory with no other files present. Paths come from the build (TULU_DATA_DIR). */
    .section .rodata
    .balign 16
    .global tulu_embedded_tokenizer_model
    .global tulu_embedded_tokenizer_model_end
tulu_embedded_tokenizer_model:
    .incbin TULU_TOKENIZER_MODEL_PATH
tulu_embedded_tokenizer_model_end:
    .byte 0
    .balign 16
    .global tulu_embedded_tokenizer_config
    .global tulu_embedded_tokenizer_config_end
tulu_embedded_tokenizer_config:
    .incbin TULU_TOKENIZER_CONFIG_PATH
tulu_embedded_tokenizer_config_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
