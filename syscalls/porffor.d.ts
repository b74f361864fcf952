/** porffor's inline C: the template's text is emitted into the generated C in place. */
declare const Porffor: {
  c(strings: TemplateStringsArray, ...values: unknown[]): void;
};
